"""Patient identifiers appear on a report only when the user turned that on; the setting is
off by default and remembered between sessions."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.gui.settings import Settings
from app.report.content import build_content
from app.xray import read_xray
from tests.dicom_files import write_dicom


@pytest.fixture(scope="module")
def dicom_view(diagnoser, xray_paths, tmp_path_factory):
    gray = np.asarray(Image.open(xray_paths["hand_1"]).convert("L"))
    folder = tmp_path_factory.mktemp("ids")
    path = write_dicom(folder / "IM1.dcm", gray.astype(np.uint16) * 16, PatientBirthDate="19700101")
    return read_xray(path), diagnoser.diagnose(path)


def _all_text(content) -> str:
    lines = [*content.header_lines, *(line for s in content.sections for line in (s.heading, *s.lines))]
    return "\n".join(lines)


def test_identifiers_are_left_out_unless_asked_for(dicom_view, diagnoser):
    hidden = _all_text(build_content([dicom_view], diagnoser.manifest))
    assert "Doe" not in hidden and "123456" not in hidden and "1970" not in hidden
    shown = build_content([dicom_view], diagnoser.manifest, patient_identifiers=True)
    assert "Patient Doe Jane; ID 123456; born 1970-01-01" in shown.header_lines


def test_an_image_without_a_dicom_header_has_no_patient_line(diagnoser, xray_paths):
    view = (read_xray(xray_paths["hand_1"]), diagnoser.diagnose(xray_paths["hand_1"]))
    content = build_content([view], diagnoser.manifest, patient_identifiers=True)
    assert not any(line.startswith("Patient") for line in content.header_lines)


def test_the_setting_is_off_by_default_and_remembered(tmp_path):
    settings = Settings(tmp_path / "settings.json")
    assert settings.patient_identifiers_on_reports is False
    settings.patient_identifiers_on_reports = True
    assert Settings(tmp_path / "settings.json").patient_identifiers_on_reports is True
    (tmp_path / "settings.json").write_text('{"patient_identifiers_on_reports": "yes"}')
    assert Settings(tmp_path / "settings.json").patient_identifiers_on_reports is False  # only a real True
