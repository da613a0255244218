"""DICOM as clinics and PACS store it: LUTs, bit depths, sign, inversion, frames, compression,
raw datasets without preamble, and the files that ship inside pydicom."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom import dcmwrite
from pydicom.data import get_testdata_files
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    MPEG2MPML,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

from app.errors import XRayReadError
from app.xray import read_xray
from app.xray.dicom import first_frame
from app.xray.reader import looks_like_dicom
from tests.dicom_files import write_dicom

# A refusal may say what is wrong with a file, never that a decoder is missing.
NO_DECODER = re.compile(r"decoder|plugin|handler|install|does not read", re.IGNORECASE)


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


def test_damaged_compressed_data_is_said_to_be_damaged(tmp_path, gray):
    path = write_dicom(
        tmp_path / "j.dcm", gray, bits=8, transfer_syntax=JPEGLSLossless, pixel_bytes=encapsulate([b"\xff\xd8" * 64])
    )
    with pytest.raises(XRayReadError, match="damaged") as refused:
        read_xray(path)
    assert not NO_DECODER.search(str(refused.value))


def test_a_compression_without_any_decoder_is_named(tmp_path, gray):
    path = write_dicom(
        tmp_path / "x.dcm", gray, bits=8, transfer_syntax=MPEG2MPML, pixel_bytes=encapsulate([b"\0\0\1\xb3" * 64])
    )
    with pytest.raises(XRayReadError, match=r"MPEG2 .* a compression bonefrac does not read"):
        read_xray(path)


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless], ids=["RLE", "JPEG2000"])
def test_real_xray_compressed_losslessly_reads_as_the_original(tmp_path, gray, syntax):
    original = write_dicom(tmp_path / "plain.dcm", gray.astype(np.uint16) * 16)
    dataset = pydicom.dcmread(original)
    dataset.compress(syntax)  # pydicom's own RLE encoder; openjpeg's JPEG 2000 encoder
    dataset.save_as(tmp_path / "compressed.dcm", enforce_file_format=True)
    assert np.array_equal(read_xray(tmp_path / "compressed.dcm").pixels, read_xray(original).pixels)


@pytest.mark.parametrize("with_file_meta", [False, True], ids=["bare-dataset", "meta-without-preamble"])
def test_dataset_without_preamble_is_read(tmp_path, gray, with_file_meta):
    dataset = pydicom.dcmread(write_dicom(tmp_path / "framed.dcm", gray, bits=8, BodyPartExamined="HAND"))
    dataset.preamble = None
    raw = tmp_path / "IM000001"  # as PACS exports name them: no extension
    if with_file_meta:  # the meta group, then the dataset in its transfer syntax (explicit VR)
        dcmwrite(raw, dataset)
    else:
        dataset.file_meta = FileMetaDataset()
        dcmwrite(raw, dataset, implicit_vr=True, little_endian=True)
    assert raw.read_bytes()[128:132] != b"DICM"
    assert looks_like_dicom(raw)
    xray = read_xray(raw)
    assert np.abs(xray.pixels - normalised(gray)).max() < 1e-5
    assert xray.metadata["BodyPartExamined"] == "HAND"


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_are_still_not_an_image(tmp_path, seed):
    path = tmp_path / "noise.bin"
    path.write_bytes(np.random.default_rng(seed).bytes(4096))
    assert not looks_like_dicom(path)
    with pytest.raises(XRayReadError, match="not an image file"):
        read_xray(path)


def test_header_is_kept_without_pixels(tmp_path, gray):
    xray = read_xray(write_dicom(tmp_path / "h.dcm", gray, bits=8, StudyInstanceUID="1.2.826.0.1.3680043.8.498.1"))
    header = xray.dicom_header
    assert header.PatientName == "Doe^Jane" and header.StudyInstanceUID == "1.2.826.0.1.3680043.8.498.1"
    assert "PixelData" not in header and header.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert "Doe" not in repr(xray)  # the header stays out of the XRay's repr (tracebacks, logs)


def _pydicom_image_files() -> list[Path]:
    found = []
    for name in sorted(get_testdata_files()):
        path = Path(name)
        if path.is_file() and looks_like_dicom(path):
            try:
                if "PixelData" in pydicom.dcmread(path, force=True):
                    found.append(path)
            except Exception:  # a test file damaged on purpose: read_xray gets it below anyway
                found.append(path)
    return found


PYDICOM_IMAGES = _pydicom_image_files()
# Refused by every JPEG library for their content: a stream that does not follow the standard
# (scan start/stop wrong for a sequential mode) and a JPEG 2000 header cut by a delimiter.
NONCONFORMING = {"JPEG-lossy.dcm", "JPEG2000-embedded-sequence-delimiter.dcm"}


@pytest.mark.parametrize("path", PYDICOM_IMAGES, ids=[p.name for p in PYDICOM_IMAGES])
def test_pydicom_files_are_read_or_refused_for_their_content(path):
    try:
        xray = read_xray(path)
    except XRayReadError as error:
        assert not NO_DECODER.search(str(error)), str(error)
        assert "\n" not in str(error)
        return
    assert xray.file_format == "DICOM" and "PixelData" not in xray.dicom_header


def _compressed(path: Path) -> bool:
    syntax = pydicom.dcmread(path, stop_before_pixels=True, force=True).file_meta.get("TransferSyntaxUID")
    return syntax is not None and syntax.is_compressed


@pytest.mark.parametrize("path", [p for p in PYDICOM_IMAGES if _compressed(p)], ids=lambda p: p.name)
def test_every_compressed_pydicom_file_decodes(path):
    """Also the files too small to be X-rays (the reader refuses those before decoding)."""
    dataset = pydicom.dcmread(path)
    if path.name in NONCONFORMING:
        with pytest.raises(XRayReadError, match="damaged or does not follow the standard"):
            first_frame(dataset)
    else:
        assert first_frame(dataset).shape[:2] == (dataset.Rows, dataset.Columns)


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
