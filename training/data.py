"""Where training images come from, how they are split, and how they become arrays.

Three layouts are understood:
  * a manifest CSV like `../shared/data/xray/manifest.csv` (columns path, source, group,
    part, fractured, split);
  * MURA v1.1: `train|valid/XR_ELBOW|XR_HAND|XR_SHOULDER/patientN/studyN_positive|negative/
    imageN.png` (patient = group; MURA's `valid` is used as our test split);
  * a plain folder tree `<part>/<fractured|normal>/<image>`.
Splits are always by group, never by image, and deterministic.
"""

from __future__ import annotations

import csv
import hashlib
import io
import multiprocessing
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from app.atomic import write_bytes_atomic
from app.errors import XRayReadError
from app.xray import read_xray, to_model_input
from app.xray.preprocess import PREPROCESSING_VERSION

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".dcm"}
_MURA_PARTS = {"XR_ELBOW": "elbow", "XR_HAND": "hand", "XR_SHOULDER": "shoulder"}


@dataclass(frozen=True)
class Sample:
    path: Path
    part: str  # elbow | hand | shoulder | other | unknown
    fractured: int  # 1 or 0
    source: str
    group: str  # leakage group: a patient, or a source picture and its copies
    split: str  # train | val | test
    region: str = ""  # finer anatomy where the data gives it (wrist, forearm, humerus, leg, ...)
    # Fracture boxes (x_centre, y_centre, width, height) relative to the image, and the stored
    # image's size, where the data gives them (the shared manifest does; MURA does not).
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    width: int = 0
    height: int = 0


def parse_boxes(text: str) -> tuple[tuple[float, float, float, float], ...]:
    """The manifest's `boxes` column: normalised YOLO "xc yc w h" boxes joined by ";"."""
    boxes = []
    for item in text.split(";"):
        numbers = item.split()
        if len(numbers) == 4:
            xc, yc, w, h = (float(n) for n in numbers)
            boxes.append((xc, yc, w, h))
    return tuple(boxes)


def load_samples(location: Path) -> list[Sample]:
    """Read any supported layout; raises ValueError with a user-facing message."""
    if location.is_file() and location.suffix.lower() == ".csv":
        return load_manifest_csv(location)
    if not location.is_dir():
        raise ValueError(f"{location}: not a manifest CSV or a folder")
    if (location / "manifest.csv").is_file():
        return load_manifest_csv(location / "manifest.csv")
    if any((location / split / name).is_dir() for split in ("train", "valid") for name in _MURA_PARTS):
        return load_mura(location)
    return load_folder_tree(location)


def load_manifest_csv(csv_path: Path) -> list[Sample]:
    root = csv_path.parent
    samples = []
    with csv_path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            samples.append(
                Sample(
                    path=root / row["path"],
                    part=row["part"],
                    fractured=int(row["fractured"]),
                    source=row.get("source") or "unknown",
                    group=row.get("group") or row["path"],
                    split=row.get("split") or split_for_group(row.get("group") or row["path"]),
                    region=row.get("region") or "",
                    boxes=parse_boxes(row.get("boxes") or ""),
                    width=int(row.get("width") or 0),
                    height=int(row.get("height") or 0),
                )
            )
    return samples


def load_mura(root: Path) -> list[Sample]:
    samples = []
    for folder_split in ("train", "valid"):
        for study_type, part in _MURA_PARTS.items():
            for image in sorted((root / folder_split / study_type).glob("patient*/study*/*")):
                if image.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                patient = image.parent.parent.name
                group = f"{study_type}/{patient}"
                split = "test" if folder_split == "valid" else split_for_group(group, (0.85, 0.15, 0.0))
                samples.append(Sample(image, part, int(image.parent.name.endswith("positive")), "mura", group, split))
    return samples


def load_folder_tree(root: Path) -> list[Sample]:
    samples = []
    for part_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for label, fractured in (("fractured", 1), ("normal", 0)):
            for image in sorted((part_dir / label).rglob("*")):
                if image.suffix.lower() in IMAGE_SUFFIXES:
                    group = f"{part_dir.name}/{image.stem}"
                    samples.append(Sample(image, part_dir.name, fractured, root.name, group, split_for_group(group)))
    if not samples:
        raise ValueError(f"{root}: no images found in <part>/<fractured|normal>/ folders")
    return samples


def deterministic_subset(samples: list[Sample], limit: int) -> list[Sample]:
    """At most `limit` samples, a fixed mix (ordered by path hash) so a small subset still
    holds every kind of image; the whole list when limit is 0."""
    if not limit:
        return samples
    return sorted(samples, key=lambda s: hashlib.sha256(str(s.path).encode()).hexdigest())[:limit]


def split_for_group(group: str, fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)) -> str:
    """Deterministic split from a hash of the group name."""
    digest = hashlib.sha256(group.encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    if position < fractions[0]:
        return "train"
    return "val" if position < fractions[0] + fractions[1] else "test"


def _prepare_one(args: tuple[str, int]) -> np.ndarray | None:
    path, size = args
    try:
        model_input = to_model_input(read_xray(path), size)
    except XRayReadError:
        return None
    return np.rint(model_input[..., 0] * 255.0).astype(np.uint8)


def load_pixels(
    samples: list[Sample], size: int, cache_dir: Path | None = None, workers: int = 2
) -> tuple[np.ndarray, list[Sample]]:
    """Model inputs as uint8 (N, size, size), through the app's own reader, and the samples
    they belong to. Files the reader refuses (the shared data has a few truncated JPEGs) are
    left out and counted; results are cached on disk, keyed by the sample list."""
    # Keyed by the sample list, the size and the preprocessing version: a change to any of
    # them must never reuse stale inputs.
    identity = f"{PREPROCESSING_VERSION}|{size}|" + "|".join(str(s.path) for s in samples)
    key = hashlib.sha256(identity.encode()).hexdigest()[:16]
    cache_file = cache_dir / f"pixels_{size}_{key}.npz" if cache_dir else None
    if cache_file and cache_file.exists():
        try:
            cached = np.load(cache_file)
            return cached["pixels"], [samples[i] for i in cached["kept"]]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            cache_file.unlink()  # damaged (e.g. an interrupted write): rebuild it
    jobs = [(str(sample.path), size) for sample in samples]
    # "spawn": TensorFlow may already be loaded in this process, and forking it can deadlock.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(tqdm(pool.map(_prepare_one, jobs, chunksize=16), total=len(jobs), desc="reading images"))
    kept = [i for i, pixels in enumerate(results) if pixels is not None]
    if len(kept) < len(samples):
        print(f"left out {len(samples) - len(kept)} of {len(samples)} images the reader refused")
    if not kept:
        raise ValueError("none of the images could be read")
    pixels = np.stack([results[i] for i in kept])
    if cache_file:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, pixels=pixels, kept=np.array(kept))
        write_bytes_atomic(cache_file, buffer.getvalue())
    return pixels, [samples[i] for i in kept]
