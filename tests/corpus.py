"""The bad-input corpus: files a clinic could really hand us, made from real X-rays.

    python -m tests.corpus OUTDIR     # write the corpus to a folder and list it

Each entry says whether the file must be read ("ok": a diagnosis or an "unsupported"
answer) or refused with an error whose message contains the given words.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tests.dicom_files import write_dicom


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    expect: str  # "ok" or "error"
    words: str = ""  # for errors: words the message must contain


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_with_header(width: int, height: int) -> bytes:
    """A PNG whose header declares this size, with one tiny compressed row of data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )


def _pdf_bytes() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(0, 10, "Radiology request form")
    return bytes(pdf.output())


def build_corpus(xray_jpeg: Path, folder: Path) -> list[CorpusFile]:
    """Write the corpus into `folder`, from one real radiograph (a JPEG)."""
    folder.mkdir(parents=True, exist_ok=True)
    real_bytes = xray_jpeg.read_bytes()
    with Image.open(xray_jpeg) as opened:
        gray = opened.convert("L")
    pixels = np.asarray(gray)
    files: list[CorpusFile] = []

    def add(name: str, data: bytes | None, expect: str, words: str = "") -> None:
        path = folder / name
        if data is not None:
            path.write_bytes(data)
        files.append(CorpusFile(path, expect, words))

    def encoded(image: Image.Image, fmt: str, **options) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **options)
        return buffer.getvalue()

    png = encoded(gray, "PNG")
    # -- broken or not images at all
    add("empty.png", b"", "error", "empty")
    add("empty.jpg", b"", "error", "empty")
    add("truncated_half.jpg", real_bytes[: len(real_bytes) // 2], "error", "truncated")
    add("truncated_header.jpg", real_bytes[:100], "error", "")
    add("truncated.png", png[: len(png) // 2], "error", "")
    add("text_renamed.png", b"Patient seen in clinic, X-ray to follow.\n", "error", "not an image")
    add("text_renamed.jpg", b"hello" * 100, "error", "not an image")
    add("pdf_renamed.png", _pdf_bytes(), "error", "not an image")
    add("page.html", b"<!doctype html><html><body><img src='x.png'></body></html>", "error", "not an image")
    add("html_renamed.jpg", b"<html><body>404 Not Found</body></html>", "error", "not an image")
    add("drawing.svg", b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>", "error", "not an image")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("image.jpg", real_bytes)
    add("archive_renamed.png", zipped.getvalue(), "error", "not an image")
    add("zero_size.png", _png_with_header(0, 0), "error", "")
    add("one_pixel.png", encoded(Image.new("L", (1, 1), 128), "PNG"), "error", "too small")
    add("ten_pixels.png", encoded(gray.resize((10, 10)), "PNG"), "error", "too small")
    add("icon.ico", encoded(gray.resize((16, 16)), "ICO"), "error", "too small")
    add("bomb_header.png", _png_with_header(100_000, 100_000), "error", "too large")
    add("bomb_wide.png", _png_with_header(2_000_000, 200), "error", "too large")
    files.append(CorpusFile(write_dicom(folder / "dicom_no_pixels.dcm", None), "error", "no pixel data"))
    add("dicom_broken_header.dcm", b"\0" * 128 + b"DICM" + os.urandom(300), "error", "DICOM")
    whole = write_dicom(folder / "dicom_whole.dcm", pixels, bits=8)
    add("dicom_truncated.dcm", whole.read_bytes()[: whole.stat().st_size // 2], "error", "")
    whole.unlink()
    (folder / "a_folder.png").mkdir(exist_ok=True)
    files.append(CorpusFile(folder / "a_folder.png", "error", "folder"))
    files.append(CorpusFile(folder / "does_not_exist.png", "error", "not found"))
    dangling = folder / "dangling_link.png"
    if not dangling.is_symlink():
        dangling.symlink_to(folder / "nowhere.png")
    files.append(CorpusFile(dangling, "error", "not found"))
    locked = folder / "no_permission.png"
    locked.write_bytes(png)
    locked.chmod(0)
    # root reads any file: there the permission cannot stop us and the file is simply read
    files.append(CorpusFile(locked, "ok" if os.geteuid() == 0 else "error", "permission"))

    # -- unusual but readable: must work
    add("animated.gif", None, "ok")
    gray.save(folder / "animated.gif", save_all=True, append_images=[Image.fromarray(255 - pixels)])
    add("cmyk.jpg", encoded(gray.convert("CMYK"), "JPEG"), "ok")
    add("sixteen_bit.png", encoded(Image.fromarray(pixels.astype(np.uint16) * 257), "PNG"), "ok")
    transparent = gray.convert("RGBA")
    transparent.putalpha(
        Image.fromarray(
            np.where(np.arange(pixels.shape[1]) < 20, 0, 255).astype(np.uint8)[None, :].repeat(pixels.shape[0], axis=0)
        )
    )
    add("rgba_transparent.png", encoded(transparent, "PNG"), "ok")
    add("gray_alpha.png", encoded(gray.convert("LA"), "PNG"), "ok")
    add("palette.png", encoded(gray.convert("P"), "PNG"), "ok")
    add("one_bit.png", encoded(gray.convert("1"), "PNG"), "ok")
    add("rgb.jpg", encoded(gray.convert("RGB"), "JPEG", quality=92), "ok")
    add("röntgen 手 ü.jpg", real_bytes, "ok")
    add("UPPER CASE.JPG", real_bytes, "ok")
    add("png_named.jpg", png, "ok")
    add("jpeg_named.png", real_bytes, "ok")
    add("bitmap.bmp", encoded(gray, "BMP"), "ok")
    add("scan.tiff", encoded(gray, "TIFF"), "ok")
    add("float.tif", encoded(Image.fromarray(pixels.astype(np.float32) / 255.0, mode="F"), "TIFF"), "ok")
    add("web.webp", encoded(gray, "WEBP", quality=90), "ok")
    add("large_scan.jpg", encoded(gray.resize((pixels.shape[1] * 10, pixels.shape[0] * 10)), "JPEG"), "ok")
    add("wide_strip.png", encoded(gray.resize((3000, 40)), "PNG"), "ok")
    add("all_black.png", encoded(Image.new("L", (300, 400), 0), "PNG"), "ok")
    noise = np.random.default_rng(7).integers(0, 256, size=(300, 300), dtype=np.uint8)
    add("noise.png", encoded(Image.fromarray(noise), "PNG"), "ok")
    return files


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")
    source = Path(__file__).resolve().parents[2] / "shared/data/xray/images/fracatlas/IMG0000019.jpg"
    for item in build_corpus(source, target):
        print(f"{item.expect:5}  {item.path.name}  {item.words}")
