"""The one reader of pixels, on real X-rays and on real files in every mode it must handle."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from app.errors import XRayReadError
from app.xray import read_xray
from app.xray.limits import MAX_SIDE


@pytest.fixture
def real_gray(xray_paths) -> np.ndarray:
    with Image.open(xray_paths["hand_1"]) as image:
        return np.asarray(image.convert("L"))


def test_reads_a_real_jpeg_as_normalised_grayscale(xray_paths):
    xray = read_xray(xray_paths["hand_1"])
    assert xray.pixels.dtype == np.float32
    assert xray.pixels.ndim == 2
    assert 0.0 <= xray.pixels.min() < xray.pixels.max() <= 1.0
    with Image.open(xray_paths["hand_1"]) as image:
        assert (xray.width, xray.height) == image.size
    assert xray.file_format == "JPEG"


def test_rgb_and_gray_copies_give_the_same_pixels(tmp_path, real_gray):
    Image.fromarray(real_gray).save(tmp_path / "gray.png")
    Image.fromarray(real_gray).convert("RGB").save(tmp_path / "rgb.png")
    gray, rgb = read_xray(tmp_path / "gray.png"), read_xray(tmp_path / "rgb.png")
    assert np.abs(gray.pixels - rgb.pixels).max() <= 1 / 255


def test_16_bit_png_keeps_its_tones(tmp_path, real_gray):
    sixteen = real_gray.astype(np.uint16) * 257  # 0..255 -> 0..65535
    Image.fromarray(sixteen).save(tmp_path / "sixteen.png")
    with Image.open(tmp_path / "sixteen.png") as check:
        assert check.mode.startswith("I")
    xray = read_xray(tmp_path / "sixteen.png")
    assert np.abs(xray.pixels - real_gray / 255.0).max() < 1e-3


def test_palette_image_is_read(tmp_path, real_gray):
    Image.fromarray(real_gray).convert("P").save(tmp_path / "palette.png")
    xray = read_xray(tmp_path / "palette.png")
    assert np.abs(xray.pixels - real_gray / 255.0).mean() < 0.02


def test_transparency_is_laid_over_black(tmp_path, real_gray):
    rgba = Image.fromarray(real_gray).convert("RGBA")
    alpha = np.full(real_gray.shape, 255, dtype=np.uint8)
    alpha[:, : real_gray.shape[1] // 2] = 0  # left half fully transparent
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(tmp_path / "rgba.png")
    xray = read_xray(tmp_path / "rgba.png")
    assert xray.pixels[:, : real_gray.shape[1] // 2].max() == 0.0
    right = real_gray[:, real_gray.shape[1] // 2 :] / 255.0
    assert np.abs(xray.pixels[:, real_gray.shape[1] // 2 :] - right).max() <= 1 / 255


def test_exif_orientation_is_applied(tmp_path, real_gray):
    image = Image.fromarray(real_gray)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    xray = read_xray(tmp_path / "rotated.jpg")
    assert (xray.width, xray.height) == (real_gray.shape[0], real_gray.shape[1])


def test_very_large_image_is_reduced(tmp_path, real_gray):
    big = Image.fromarray(real_gray).resize((real_gray.shape[1] * 8, real_gray.shape[0] * 8))
    big.save(tmp_path / "big.png")
    xray = read_xray(tmp_path / "big.png")
    assert max(xray.width, xray.height) == MAX_SIDE


def test_animated_gif_uses_first_frame_and_says_so(tmp_path, real_gray):
    first = Image.fromarray(real_gray)
    second = Image.fromarray(255 - real_gray)
    first.save(tmp_path / "anim.gif", save_all=True, append_images=[second])
    xray = read_xray(tmp_path / "anim.gif")
    assert any("first" in note for note in xray.notes)
    assert np.abs(xray.pixels - real_gray / 255.0).mean() < 0.05


@pytest.mark.parametrize(
    ("maker", "expected"),
    [
        (lambda p: p, "file not found"),
        (lambda p: (p.mkdir(), p)[1], "folder"),
        (lambda p: (p.write_bytes(b""), p)[1], "empty"),
        (lambda p: (p.write_text("this is a text file, not an X-ray"), p)[1], "not an image"),
        (lambda p: (p.write_text("<html><body>hi</body></html>"), p)[1], "not an image"),
        (lambda p: (Image.new("L", (1, 1)).save(p, format="PNG"), p)[1], "too small"),
    ],
    ids=["missing", "directory", "empty", "text", "html", "one-pixel"],
)
def test_unusable_files_raise_a_clear_error(tmp_path, maker, expected):
    path = maker(tmp_path / "case.png")
    with pytest.raises(XRayReadError, match=expected):
        read_xray(path)


def test_truncated_jpeg_is_refused(tmp_path, xray_paths):
    data = xray_paths["hand_1"].read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(XRayReadError, match="damaged or truncated"):
        read_xray(tmp_path / "cut.jpg")


def test_non_ascii_file_name(tmp_path, xray_paths):
    target = tmp_path / "röntgen_手.jpg"
    target.write_bytes(xray_paths["hand_1"].read_bytes())
    assert read_xray(target).source_name == "röntgen_手.jpg"


def test_the_xray_carries_the_sha256_of_its_files_bytes(xray_paths, tmp_path, real_gray):
    """The reader hashes the bytes it decoded, so a diagnosis names exactly its file without
    the file being read a second time (issue 13)."""
    from tests.dicom_files import write_dicom

    jpeg = xray_paths["hand_1"]
    dicom = write_dicom(tmp_path / "hand.dcm", real_gray, bits=8)
    for path in (jpeg, dicom):
        assert read_xray(path).file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(jpeg.read_bytes() + b"\0")  # same pixels (JPEG ignores trailing bytes), other file
    assert read_xray(copy).file_sha256 != read_xray(jpeg).file_sha256
    assert np.array_equal(read_xray(copy).pixels, read_xray(jpeg).pixels)
