"""Results back to PACS: the Secondary Capture written from a Diagnosis, validated with
dicom3tools' dciodvfy and read back with pydicom; `bonefrac predict --dicom DIR`; and patient
identifiers, which a DICOM input now carries in memory, never reaching printed output."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import SecondaryCaptureImageStorage

from app.cli import main
from app.report.dicom_result import SERIES_DESCRIPTION, burned_in_line, write_dicom_result
from app.xray import read_xray
from tests.conftest import MODELS_DIR
from tests.dicom_files import write_dicom

STUDY_UID = "1.2.826.0.1.3680043.8.498.1501"
SOURCE_SERIES_UID = "1.2.826.0.1.3680043.8.498.1502"
IDENTIFIERS = ("Doe", "Jane", "123456")  # tests/dicom_files.py's patient

# dciodvfy warnings that are right for what we know, each for its reason:
ALLOWED_WARNINGS = {
    # Laterality is type 2C; a PNG, or a DICOM that does not say the side, leaves it unknown, and
    # "empty when actually unknown" is what the standard asks then (guessing a side would be worse).
    "attribute <Laterality>": "is only permitted to be empty when actually unknown",
    # A PNG/JPEG input has no patient and no study ID: empty type 2 attributes, as the IOD allows;
    # dciodvfy notes that a DICOMDIR (media index) could not be built from them.
    "needed to build DICOMDIR - Patient ID": "",
    "needed to build DICOMDIR - Study ID": "",
    # A DICOM source that does not say when its study was made: empty type 2 attributes too.
    "needed to build DICOMDIR - Study Date": "",
    "needed to build DICOMDIR - Study Time": "",
}


def validate(path: Path) -> list[str]:
    """dciodvfy's findings on `path`: fails on any error or unexplained warning; returns the warnings."""
    if shutil.which("dciodvfy") is None:
        pytest.fail("dciodvfy is missing: 'make system-deps' installs it (Debian package dicom3tools)")
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert "SCImage" in lines, lines  # the IOD dciodvfy recognised and checked the object against
    errors = [line for line in lines if line.startswith("Error")]
    assert not errors, errors
    warnings = [line for line in lines if line.startswith("Warning")]
    for warning in warnings:
        assert any(key in warning and reason in warning for key, reason in ALLOWED_WARNINGS.items()), warning
    return warnings


@pytest.fixture(scope="module")
def hand(routed_paths, xray_paths) -> Path:
    """A real X-ray that the models route to a fracture model: its result has a heatmap."""
    return next(iter(routed_paths.values()))[0] if routed_paths else xray_paths["hand_1"]


@pytest.fixture(scope="module")
def source(hand, tmp_path_factory) -> Path:
    """The X-ray as a modality sends it: patient, study and series attributes."""
    gray = np.asarray(Image.open(hand).convert("L"))
    return write_dicom(
        tmp_path_factory.mktemp("pacs") / "IM0001.dcm",
        gray.astype(np.uint16) * 16,
        StudyInstanceUID=STUDY_UID,
        SeriesInstanceUID=SOURCE_SERIES_UID,
        StudyID="S77",
        AccessionNumber="ACC1234",
        StudyDate="20261128",
        StudyTime="093000",
        PatientBirthDate="19700101",
        PatientSex="F",
        ReferringPhysicianName="Who^Doctor",
        Laterality="L",
        BodyPartExamined="HAND",
    )


def test_result_for_a_dicom_input_joins_its_study(diagnoser, source, tmp_path):
    xray, diagnosis = read_xray(source), diagnoser.diagnose(source)
    path = write_dicom_result(tmp_path / "IM0001_result.dcm", xray, diagnosis, diagnoser.manifest)
    assert validate(path) == []  # the source says everything: no warning at all
    result, original = pydicom.dcmread(path), pydicom.dcmread(source)
    assert result.SOPClassUID == SecondaryCaptureImageStorage == result.file_meta.MediaStorageSOPClassUID
    assert (result.PatientName, result.PatientID, result.PatientBirthDate) == ("Doe^Jane", "123456", "19700101")
    assert (result.StudyInstanceUID, result.AccessionNumber, result.StudyID) == (STUDY_UID, "ACC1234", "S77")
    assert result.SeriesInstanceUID not in (SOURCE_SERIES_UID, STUDY_UID)
    assert result.SOPInstanceUID != original.SOPInstanceUID
    assert "bonefrac" in result.SeriesDescription and "decision support" in result.SeriesDescription
    assert result.BurnedInAnnotation == "YES" and result.Laterality == "L"
    assert result.SourceImageSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID
    pixels = result.pixel_array
    assert pixels.shape == (result.Rows, result.Columns, 3) and result.PhotometricInterpretation == "RGB"
    if diagnosis.heatmap is not None:  # the overlay is in colour, where the X-ray is gray
        picture = pixels[: -result.Rows // 20].astype(int)
        assert (picture.max(axis=2) - picture.min(axis=2)).mean() > 5
    # The burned-in line: white text on a black band below the picture.
    band = pixels[-result.Rows // 40 :]
    assert band.max() > 200 and np.median(band) < 20


def test_result_for_a_dicom_without_study_date_or_accession_is_still_valid(diagnoser, hand, tmp_path):
    """Type 2 attributes the source lacks are written present and empty, as the IOD requires
    (dciodvfy: "Missing attribute Type 2 Required Element" otherwise)."""
    gray = np.asarray(Image.open(hand).convert("L"))
    sparse = write_dicom(tmp_path / "IM0002.dcm", gray.astype(np.uint16) * 16, StudyInstanceUID=STUDY_UID)
    xray = read_xray(sparse)
    path = write_dicom_result(tmp_path / "IM0002_result.dcm", xray, diagnoser.diagnose(xray), diagnoser.manifest)
    validate(path)
    result = pydicom.dcmread(path)
    assert result.StudyInstanceUID == STUDY_UID
    assert (result.StudyDate, result.StudyTime, result.AccessionNumber) == ("", "", "")


def test_result_for_a_png_opens_a_new_study(diagnoser, hand, tmp_path):
    xray, diagnosis = read_xray(hand), diagnoser.diagnose(hand)
    first = write_dicom_result(tmp_path / "a_result.dcm", xray, diagnosis, diagnoser.manifest)
    second = write_dicom_result(tmp_path / "b_result.dcm", xray, diagnosis, diagnoser.manifest)
    validate(first)
    one, two = pydicom.dcmread(first), pydicom.dcmread(second)
    assert one.StudyInstanceUID != two.StudyInstanceUID  # each result of a PNG is its own study
    assert one.SeriesInstanceUID != two.SeriesInstanceUID and one.SOPInstanceUID != two.SOPInstanceUID
    assert one.PatientName == "" and one.PatientID == ""
    assert one.SeriesDescription == SERIES_DESCRIPTION and one.BurnedInAnnotation == "YES"
    assert one.pixel_array.shape[2] == 3


def test_burned_in_line_says_verdict_probability_model_and_notice(diagnoser, hand):
    diagnosis = diagnoser.diagnose(hand)
    line = burned_in_line(diagnosis, diagnoser.manifest)
    assert diagnoser.manifest.version in line and "Decision support, not a diagnosis" in line
    if diagnosis.fracture_probability is not None:
        assert f"{diagnosis.fracture_probability:.2f}" in line


def test_cli_writes_one_result_per_input_and_prints_no_identifier(source, hand, tmp_path, capsys):
    out = tmp_path / "results"  # created by --dicom
    status = main(["--models-dir", str(MODELS_DIR), "predict", str(source), str(hand), "--json", "--dicom", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    payload = json.loads(captured.out)
    names = [item["dicom"] for item in payload]
    assert names == ["IM0001_result.dcm", f"{hand.stem}_result.dcm"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # nothing else left (no temporary files)
    for name in names:
        validate(out / name)
    assert pydicom.dcmread(out / names[0]).StudyInstanceUID == STUDY_UID
    assert not any(word in captured.out + captured.err for word in IDENTIFIERS)


def test_unusable_dicom_folder_is_refused_before_any_image_is_diagnosed(hand, tmp_path, capsys):
    occupied = tmp_path / "results"
    occupied.write_text("a file where the folder should be")
    status = main(["--models-dir", str(MODELS_DIR), "predict", str(hand), "--dicom", str(occupied)])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    expected = f"error: {occupied}: cannot create the DICOM result folder (File exists)"
    assert captured.err.strip().splitlines() == [expected]


def test_window_saves_as_dicom_and_keeps_identifiers_out_of_history_and_csv(virtual_display, source, tmp_path):
    """The window diagnoses a DICOM with a patient name and ID and saves it as DICOM through the
    button and its dialog: the object joins the study; the history database (with its
    write-ahead log) and its CSV export hold neither identifier, though the XRay on screen does."""
    from app.gui.window import BoneFracWindow
    from tests.test_gui import answer_file_dialog, close_dialogs, load, wait_for

    home = tmp_path / "home"
    home.mkdir()
    app = BoneFracWindow(MODELS_DIR, history_path=home / "history.sqlite3")
    try:
        wait_for(app, lambda: app.diagnoser is not None or app.models_error is not None)
        load(app, source)
        assert app.current_view.xray.dicom_header.PatientID == "123456"
        app.predict_button.invoke()
        wait_for(app, lambda: not app.predicting)
        assert close_dialogs(app) == [] and app.current_view.diagnosis is not None
        seen = answer_file_dialog(app, tmp_path / "saved_result.dcm")
        app.dicom_button.invoke()
        wait_for(app, lambda: (tmp_path / "saved_result.dcm").is_file() and not app.writing_report)
        assert close_dialogs(app) == [] and seen["file"] == "IM0001_result.dcm"
        assert app.export_history(tmp_path / "history.csv")
    finally:
        app.close()
    validate(tmp_path / "saved_result.dcm")
    assert pydicom.dcmread(tmp_path / "saved_result.dcm").StudyInstanceUID == STUDY_UID
    stored = b"".join(path.read_bytes() for path in [*home.iterdir(), tmp_path / "history.csv"] if path.is_file())
    assert b"IM0001.dcm" in stored  # the row is there
    assert not any(word.encode() in stored for word in IDENTIFIERS)
