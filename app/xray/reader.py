"""Read an image file into an `XRay`. The one reader of pixels, for the app and for training.

Files are decoded by content, not by extension. DICOM files (by their "DICM" preamble, or
raw datasets without one: `app.xray.sniff`) go to `app.xray.dicom`; everything else goes
through Pillow. The file is read once; its sha256 is taken from those bytes and travels on the `XRay`.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.errors import XRayReadError
from app.xray.colour import measure_colourfulness
from app.xray.image import XRay
from app.xray.limits import MAX_PIXELS, MAX_SIDE, MIN_SIDE, limit_size
from app.xray.sniff import HEAD_SIZE, is_dicom

# Our own limit (MAX_PIXELS, checked before decoding) replaces Pillow's lower default, and
# its warning, which would otherwise print to the terminal for large legitimate scans.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


def read_xray(path: str | os.PathLike[str]) -> XRay:
    """Read `path` (PNG, JPEG, GIF, BMP, TIFF, DICOM) as a normalised grayscale X-ray.

    Raises `XRayReadError` with a message in the user's terms when the file cannot be used;
    nothing else escapes, whatever the file holds.
    """
    file_path = Path(path)
    try:
        _check_readable(file_path)
        data = _read_bytes(file_path)
        if is_dicom(data[:HEAD_SIZE]):
            from app.xray.dicom import read_dicom  # pydicom is only imported when needed

            # read_dicom opens the file by its path (pydicom reads it again): the hash below
            # is of the bytes read here, the same file unless it changed in between.
            xray = read_dicom(file_path)
        else:
            xray = _read_with_pillow(data, file_path.name)
    except XRayReadError:
        raise
    except MemoryError:
        raise XRayReadError("the image is too large for this computer's memory") from None
    except Exception as error:  # a decoder's own failure on a malformed file
        raise XRayReadError(f"the file could not be read as an image ({type(error).__name__}: {error})") from None
    return replace(xray, file_sha256=hashlib.sha256(data).hexdigest())


def _check_readable(file_path: Path) -> None:
    if not file_path.exists():
        raise XRayReadError("file not found")
    if file_path.is_dir():
        raise XRayReadError("this is a folder, not an image file")
    if not os.access(file_path, os.R_OK):
        raise XRayReadError("the file cannot be read (permission denied)")
    if file_path.stat().st_size == 0:
        raise XRayReadError("the file is empty")


def _read_bytes(file_path: Path) -> bytes:
    try:
        return file_path.read_bytes()
    except OSError as error:  # vanished or unreadable since the checks above
        raise XRayReadError(f"the file could not be read ({error.strerror or error})") from None


def looks_like_dicom(file_path: Path) -> bool:
    try:
        with file_path.open("rb") as handle:
            return is_dicom(handle.read(HEAD_SIZE))
    except OSError:
        return False


def _read_with_pillow(data: bytes, name: str) -> XRay:
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise XRayReadError(
            "not an image file that can be read (expected PNG, JPEG or DICOM; also BMP, TIFF, GIF or WebP)"
        ) from None
    except Image.DecompressionBombError:
        raise XRayReadError("the image is too large to open safely") from None
    except OSError as error:
        raise XRayReadError(f"the file is damaged or truncated ({error})") from None

    with image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise XRayReadError(f"the image is too large to open safely ({width}x{height} pixels)")
        if min(width, height) < MIN_SIDE:
            raise XRayReadError(f"the image is too small to be an X-ray ({width}x{height} pixels)")
        notes: list[str] = []
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            notes.append(f"the file holds {frames} frames; the first was used")
        file_format = image.format or "unknown"
        source_mode = image.mode
        if file_format == "JPEG":
            # Let libjpeg decode at a reduced scale: a 200-megapixel scan never fills memory.
            image.draft(image.mode, (MAX_SIDE, MAX_SIDE))
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)
            pixels = _to_gray_float(upright)
            colourfulness = measure_colourfulness(upright)
        except (OSError, ValueError, SyntaxError, EOFError) as error:
            raise XRayReadError(f"the image data is damaged or truncated ({error})") from None

    pixels = limit_size(pixels)
    return XRay(
        pixels=pixels,
        source_name=name,
        file_format=file_format,
        original_size=(width, height),
        metadata={"format": file_format, "mode": source_mode},
        notes=tuple(notes),
        colourfulness=colourfulness,
    )


def _to_gray_float(image: Image.Image) -> np.ndarray:
    """Any Pillow mode -> float32 grayscale in [0, 1]. Transparency is laid over black,
    the background of a radiograph."""
    mode = image.mode
    if mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32) / 65535.0
    if mode == "I":
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max() <= 65535 else float(values.max())
        return (np.clip(values, 0, None) / top).astype(np.float32)
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float32))
        low, high = float(values.min()), float(values.max())
        return (values - low) / (high - low) if high > low else np.zeros_like(values)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, rgba)
    elif mode not in ("L", "RGB"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, palette, 1-bit
    gray = image.convert("L")
    return np.asarray(gray, dtype=np.float32) / 255.0
