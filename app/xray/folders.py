"""Folders of X-rays: what in a folder is an X-ray, and which files are one study.

    find_xrays(folder) -> [Path]           images and DICOM files in it and its subfolders
    group_studies(files, root) -> [Study]  DICOM by StudyInstanceUID, other files by folder
                                           (or one study per image)

Grouping reads only DICOM headers (no pixels), so a folder of hundreds of files opens fast;
pixels are read when the studies are diagnosed.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from app.xray.reader import looks_like_dicom

# Files without one of these suffixes are taken when their content is DICOM (DICOM files
# often have no extension at all).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".bmp", ".tif", ".tiff", ".gif", ".webp"})


def find_xrays(folder: str | os.PathLike[str]) -> list[Path]:
    """The X-rays in `folder` and its subfolders, sorted; hidden entries and DICOMDIR index
    files skipped. Decided by suffix, or by content for files without an image suffix."""
    found: list[Path] = []
    for parent, subfolders, names in os.walk(folder):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or name.upper() == "DICOMDIR":
                continue
            path = Path(parent, name)
            if path.suffix.lower() in IMAGE_SUFFIXES or looks_like_dicom(path):
                found.append(path)
    return found


@dataclass(frozen=True)
class DicomFacts:
    """What grouping needs from a DICOM header. The UID identifies a study, not a patient, and
    stays in memory: it is never logged or stored."""

    study_uid: str
    body_part: str  # BodyPartExamined, "" when absent


@dataclass
class Study:
    """Files that are views of one study, as the worklist lists them."""

    key: str  # "dicom:<uid>" or "folder:<path>": unique within one opened folder
    label: str  # what the user reads: the folder, and for DICOM the end of the study UID
    files: list[Path]
    body_part: str = ""  # from the DICOM headers, until a prediction says


def dicom_facts(path: Path) -> DicomFacts | None:
    """The study UID and body part from a DICOM file's header (pixels not read), or None when
    it is not DICOM, has no StudyInstanceUID or its header cannot be read (the error is then
    reported when its pixels are read, like any unreadable file)."""
    if not looks_like_dicom(path):
        return None
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(
                path, stop_before_pixels=True, force=True, specific_tags=["StudyInstanceUID", "BodyPartExamined"]
            )
        uid = str(dataset.get("StudyInstanceUID", "") or "")
        part = str(dataset.get("BodyPartExamined", "") or "")
    except Exception:  # any damage: grouped by folder, and the reader says what is wrong later
        return None
    return DicomFacts(uid, part.capitalize()) if uid else None


def group_studies(files: list[Path], root: Path, one_per_image: bool = False) -> list[Study]:
    """One Study per StudyInstanceUID (DICOM files, wherever they lie under `root`) and one per
    folder for the other files; in the order their first file was found. `one_per_image`: each
    non-DICOM file is a study of its own (a folder of unrelated exports); DICOM files still
    go by their StudyInstanceUID, which says which files belong together."""
    studies: dict[str, Study] = {}
    for path in files:
        facts = dicom_facts(path)
        where = _relative_folder(path, root)
        if facts is not None:
            key, label = f"dicom:{facts.study_uid}", f"{where} · DICOM study …{facts.study_uid[-8:]}"
        elif one_per_image:
            key, label = f"file:{path}", f"{where}/{path.name}"
        else:
            key, label = f"folder:{path.parent}", where
        study = studies.setdefault(key, Study(key=key, label=label, files=[]))
        study.files.append(path)
        if facts is not None and facts.body_part and not study.body_part:
            study.body_part = facts.body_part
    return list(studies.values())


def _relative_folder(path: Path, root: Path) -> str:
    """The file's folder, named from the opened folder's own name down."""
    try:
        relative = path.parent.relative_to(root)
    except ValueError:
        return str(path.parent)
    return root.name if str(relative) == "." else f"{root.name}/{relative.as_posix()}"
