"""DICOM radiographs: modality LUT, then VOI LUT (or window), then MONOCHROME1 inversion.

Compressed transfer syntaxes are decoded by the packages installed with bonefrac (pylibjpeg
with libjpeg and openjpeg; pydicom itself for RLE). Raw datasets without preamble or file
meta are read too (`force=True`), once `app.xray.sniff` has judged the content to be DICOM.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from app.errors import XRayReadError
from app.xray.colour import measure_colourfulness
from app.xray.image import XRay
from app.xray.limits import MAX_PIXELS, MIN_SIDE, limit_size

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

# Non-identifying attributes worth keeping. Patient identifiers are deliberately absent.
_KEPT_ATTRIBUTES = ("Modality", "BodyPartExamined", "ViewPosition", "StudyDate", "PhotometricInterpretation")
# Bulk data left out of the header kept in memory: the pixels are on the XRay already.
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def read_dicom(file_path: Path) -> XRay:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    with warnings.catch_warnings():  # pydicom's notes on odd files: the refusal, if any, says it in one line
        warnings.simplefilter("ignore")
        dataset = _open(file_path)
        columns, rows = _checked_size(dataset)
        frames = _frame_count(dataset)
        pixels = first_frame(dataset)
    notes = (f"the file holds {frames} frames; the first was used",) if frames > 1 else ()
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
        notes=notes,
        colourfulness=colourfulness,
        dicom_header=_header(dataset),
    )


def _open(file_path: Path) -> Dataset:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        # force: raw datasets (no preamble, no file meta) are read; sniff.py vouched for the content.
        dataset = pydicom.dcmread(file_path, force=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError, AttributeError) as error:
        raise XRayReadError(f"the DICOM file is damaged ({_one_line(error)})") from None
    if "PixelData" not in dataset:
        raise XRayReadError("the DICOM file holds no image (no pixel data)")
    if "TransferSyntaxUID" not in dataset.file_meta:
        _name_raw_encoding(dataset)
    return dataset


def _name_raw_encoding(dataset: Dataset) -> None:
    """A raw dataset does not say how it is encoded; pydicom found out while reading it.
    Uncompressed pixels can then be decoded; compressed ones cannot be told apart."""
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    if dataset["PixelData"].is_undefined_length:
        raise XRayReadError("the DICOM image is compressed but the file does not say how (no transfer syntax)")
    implicit, little = dataset.original_encoding
    syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    dataset.file_meta.TransferSyntaxUID = syntax


def _checked_size(dataset: Dataset) -> tuple[int, int]:
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
    return columns, rows


def _frame_count(dataset: Dataset) -> int:
    try:
        return int(dataset.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        raise XRayReadError("the DICOM header is damaged (number of frames is not a number)") from None


def first_frame(dataset: Dataset) -> np.ndarray:
    """The first frame's stored values (colour as RGB), decoding only that frame."""
    from pydicom.pixels import get_decoder, pixel_array

    syntax = dataset.file_meta.TransferSyntaxUID
    name = getattr(syntax, "name", str(syntax))
    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        raise XRayReadError(f"the DICOM image is stored as {name}, a compression bonefrac does not read")
    try:
        return pixel_array(dataset, index=0)
    except RuntimeError:  # every installed decoder for this syntax rejected the data
        raise XRayReadError(f"the DICOM image data ({name}) is damaged or does not follow the standard") from None
    except (ValueError, AttributeError, KeyError, TypeError, NotImplementedError) as error:
        raise XRayReadError(f"the DICOM pixel data is damaged ({_one_line(error)})") from None


def _header(dataset: Dataset) -> Dataset:
    """The source's attributes without its pixels, for results that go back to the same study."""
    from pydicom.dataset import Dataset, FileMetaDataset

    header = Dataset()
    header.file_meta = FileMetaDataset(dataset.file_meta)
    for element in dataset:
        if element.keyword not in _PIXEL_KEYWORDS:
            header.add(element)
    return header


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
