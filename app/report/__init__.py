"""Reports composed from `Diagnosis` values (never from the screen), written atomically."""

from __future__ import annotations

from pathlib import Path

from app.atomic import write_bytes_atomic
from app.diagnosis.manifest import ModelManifest
from app.diagnosis.value import Diagnosis, StudyDiagnosis
from app.errors import ReportWriteError
from app.report.content import build_content
from app.xray import XRay

REPORT_SUFFIXES = (".pdf", ".png")


def write_report(
    path: Path,
    views: list[tuple[XRay, Diagnosis]],
    manifest: ModelManifest,
    study: StudyDiagnosis | None = None,
    note: str = "",
    patient_identifiers: bool = False,
) -> Path:
    """Write a PDF or PNG report (by the file's extension). Raises ReportWriteError.
    `patient_identifiers`: print the DICOM patient name, ID and birth date (off by default)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise ReportWriteError(f"{path.name}: a report must end in .pdf or .png")
    if not views:
        raise ReportWriteError("there is no result to put in a report")
    if not path.parent.is_dir():
        raise ReportWriteError(f"{path.parent}: the folder does not exist")
    content = build_content(views, manifest, study=study, note=note, patient_identifiers=patient_identifiers)
    if suffix == ".pdf":
        from app.report.pdf import render_pdf

        data = render_pdf(content)
    else:
        from app.report.png import render_png

        data = render_png(content)
    try:
        write_bytes_atomic(path, data)
    except OSError as error:
        raise ReportWriteError(f"{path}: the report could not be written ({error.strerror})") from None
    return path
