"""DICOM as clinics store it: LUTs, bit depths, sign, inversion, frames, compression."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, JPEGLSLossless

from app.errors import XRayReadError
from app.xray import read_xray
from tests.dicom_files import write_dicom


@pytest.fixture(scope="module")
def gray(xray_paths) -> np.ndarray:
    with Image.open(xray_paths["hand_1"]) as image:
        return np.asarray(image.convert("L"))


def normalised(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    return (values - values.min()) / (values.max() - values.min())


def test_8_bit_monochrome2(tmp_path, gray):
    xray = read_xray(write_dicom(tmp_path / "a.dcm", gray, bits=8))
    assert xray.file_format == "DICOM"
    assert np.abs(xray.pixels - normalised(gray)).max() < 1e-5


def test_12_bit_in_16_with_rescale(tmp_path, gray):
    stored = gray.astype(np.uint16) * 16
    path = write_dicom(tmp_path / "b.dcm", stored, RescaleSlope=2, RescaleIntercept=-1024)
    assert np.abs(read_xray(path).pixels - normalised(gray)).max() < 1e-5


def test_signed_pixels(tmp_path, gray):
    stored = gray.astype(np.int16) * 8 - 1000
    xray = read_xray(write_dicom(tmp_path / "c.dcm", stored, signed=True))
    assert np.abs(xray.pixels - normalised(gray)).max() < 1e-5


def test_window_centre_and_width_are_applied(tmp_path, gray):
    stored = gray.astype(np.uint16) * 16  # 0..4080
    path = write_dicom(tmp_path / "d.dcm", stored, WindowCenter=[1000, 3000], WindowWidth=[800, 2000])
    xray = read_xray(path)
    # first window: 600..1400 -> stored values below 600 are black, above 1400 white
    assert xray.pixels[stored < 550].max() == pytest.approx(0.0, abs=1e-6)
    assert xray.pixels[stored > 1450].min() == pytest.approx(1.0, abs=1e-6)


def test_voi_lut_sequence_is_applied(tmp_path, gray):
    from pydicom.dataset import Dataset

    stored = gray.astype(np.uint16)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 16]
    item.add_new(0x00283006, "OW", (4095 - np.arange(256) * 16).astype("<u2").tobytes())  # inverting LUT
    path = write_dicom(tmp_path / "e.dcm", stored, VOILUTSequence=[item])
    assert np.abs(read_xray(path).pixels - (1.0 - normalised(gray))).max() < 1e-3


def test_monochrome1_is_inverted(tmp_path, gray):
    stored = 255 - gray
    xray = read_xray(write_dicom(tmp_path / "f.dcm", stored, photometric="MONOCHROME1", bits=8))
    assert np.abs(xray.pixels - normalised(gray)).max() < 1e-5


def test_multi_frame_uses_the_first_frame_and_says_so(tmp_path, gray):
    frames = np.stack([gray, 255 - gray, gray // 2])
    xray = read_xray(write_dicom(tmp_path / "g.dcm", frames, bits=8))
    assert np.abs(xray.pixels - normalised(gray)).max() < 1e-5
    assert any("first" in note for note in xray.notes)


def test_useful_metadata_kept_identifiers_dropped(tmp_path, gray):
    path = write_dicom(
        tmp_path / "h.dcm", gray, bits=8, BodyPartExamined="HAND", ViewPosition="PA", StudyDate="20260101"
    )
    metadata = read_xray(path).metadata
    assert (metadata["BodyPartExamined"], metadata["ViewPosition"], metadata["StudyDate"]) == ("HAND", "PA", "20260101")
    assert "Doe" not in str(metadata) and "123456" not in str(metadata)


def test_jpeg_compressed_dicom_decodes(tmp_path, xray_paths, gray):
    jpeg = xray_paths["hand_1"].read_bytes()
    path = write_dicom(
        tmp_path / "i.dcm", gray, bits=8, transfer_syntax=JPEGBaseline8Bit, pixel_bytes=encapsulate([jpeg])
    )
    assert np.abs(read_xray(path).pixels - normalised(gray)).max() < 0.02


def test_compression_without_a_decoder_names_what_to_install(tmp_path, gray):
    path = write_dicom(
        tmp_path / "j.dcm", gray, bits=8, transfer_syntax=JPEGLSLossless, pixel_bytes=encapsulate([b"\xff\xd8" * 64])
    )
    with pytest.raises(XRayReadError, match="dicom-codecs"):
        read_xray(path)


def test_dicom_and_png_give_the_same_answer(tmp_path, diagnoser, xray_paths, gray):
    Image.fromarray(gray).save(tmp_path / "k.png")
    from_png = diagnoser.diagnose(tmp_path / "k.png")
    from_dicom = diagnoser.diagnose(write_dicom(tmp_path / "k.dcm", gray.astype(np.uint16) * 16))
    assert from_dicom.part == from_png.part
    for part in ("elbow", "hand", "shoulder"):
        assert abs(from_dicom.head_probabilities[part] - from_png.head_probabilities[part]) <= 0.02


@pytest.mark.parametrize(
    "attributes", [{"WindowCenter": 100, "WindowWidth": 0}, {"Rows": None}], ids=["zero-window", "no-rows"]
)
def test_malformed_headers_are_clear_errors(tmp_path, gray, attributes):
    path = write_dicom(tmp_path / "bad.dcm", gray, bits=8, **attributes)
    with pytest.raises(XRayReadError, match="DICOM"):
        read_xray(path)
