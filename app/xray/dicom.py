"""DICOM radiographs: modality LUT, then VOI LUT (or window), then MONOCHROME1 inversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from app.errors import XRayReadError
from app.xray.colour import measure_colourfulness
from app.xray.image import XRay
from app.xray.limits import MAX_PIXELS, MIN_SIDE, limit_size

# Non-identifying attributes worth keeping. Patient identifiers are deliberately absent.
_KEPT_ATTRIBUTES = ("Modality", "BodyPartExamined", "ViewPosition", "StudyDate", "PhotometricInterpretation")


def read_dicom(file_path: Path) -> XRay:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi_lut, pixel_array

    try:
        dataset = pydicom.dcmread(file_path)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as error:
        raise XRayReadError(f"the DICOM file is damaged ({error})") from None
    if "PixelData" not in dataset:
        raise XRayReadError("the DICOM file holds no image (no pixel data)")
    try:
        rows, columns = int(dataset.get("Rows") or 0), int(dataset.get("Columns") or 0)
    except (TypeError, ValueError):
        rows = columns = 0
    if not rows or not columns:
        raise XRayReadError("the DICOM header is damaged (no image size)")
    if rows * columns > MAX_PIXELS:
        raise XRayReadError(f"the image is too large to open safely ({columns}x{rows} pixels)")
    if min(rows, columns) < MIN_SIDE:
        raise XRayReadError(f"the image is too small to be an X-ray ({columns}x{rows} pixels)")

    notes: list[str] = []
    try:
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
        pixels = dataset.pixel_array if frames == 1 else pixel_array(dataset, index=0)  # decode one frame
    except (NotImplementedError, RuntimeError) as error:
        syntax = getattr(dataset.file_meta, "TransferSyntaxUID", None)
        name = getattr(syntax, "name", "this compression")
        raise XRayReadError(
            f"the DICOM image is compressed with {name}; install the decoders with "
            f"'pip install bonefrac[dicom-codecs]' ({error})"
        ) from None
    except (ValueError, AttributeError, KeyError) as error:
        raise XRayReadError(f"the DICOM pixel data is damaged ({error})") from None
    if frames > 1:
        notes.append(f"the file holds {frames} frames; the first was used")
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    colourfulness = 0.0
    if pixels.ndim == 3:  # colour DICOM (e.g. a secondary capture of a photograph): luma
        rgb = np.clip(pixels[..., :3], 0, 255).astype(np.uint8)
        colourfulness = measure_colourfulness(Image.fromarray(rgb, mode="RGB"))
        pixels = pixels[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        photometric = "MONOCHROME2"
    try:
        values = apply_modality_lut(pixels, dataset)
        values = np.asarray(apply_voi_lut(values, dataset, index=0), dtype=np.float64)
    except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError) as error:
        raise XRayReadError(f"the DICOM grey-scale tables (rescale / window / LUT) are invalid ({error})") from None
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    if photometric == "MONOCHROME1":
        scaled = 1.0 - scaled  # MONOCHROME1 stores bone dark; we want bone bright
    metadata = {"format": "DICOM"}
    for attribute in _KEPT_ATTRIBUTES:
        value = dataset.get(attribute)
        if value not in (None, ""):
            metadata[attribute] = str(value)
    return XRay(
        pixels=limit_size(scaled.astype(np.float32)),
        source_name=file_path.name,
        file_format="DICOM",
        original_size=(columns, rows),
        metadata=metadata,
        notes=tuple(notes),
        colourfulness=colourfulness,
    )
