"""Out-of-scope images are answered "unsupported" with their reason, never with a verdict."""

from __future__ import annotations

import numpy as np
from PIL import Image

from app.diagnosis import Verdict
from app.diagnosis.heatmap import colourise
from app.diagnosis.scope import out_of_scope_reason
from app.xray import read_xray


def test_real_radiographs_pass_the_checks(xray_paths):
    for path in xray_paths.values():
        assert out_of_scope_reason(read_xray(path)) is None, path.name


def test_colour_picture_is_unsupported(diagnoser, xray_paths, tmp_path):
    # A strongly coloured rendering of a real radiograph (false-colour map), saved as RGB.
    gray = read_xray(xray_paths["hand_0"]).pixels
    Image.fromarray(colourise(gray)).save(tmp_path / "colour.png")
    diagnosis = diagnoser.diagnose(tmp_path / "colour.png")
    assert diagnosis.verdict is Verdict.UNSUPPORTED
    assert diagnosis.fracture_probability is None
    assert "colour" in diagnosis.unsupported_reason


def test_blank_image_is_unsupported(diagnoser, tmp_path):
    Image.fromarray(np.full((400, 300), 128, dtype=np.uint8)).save(tmp_path / "blank.png")
    diagnosis = diagnoser.diagnose(tmp_path / "blank.png")
    assert diagnosis.verdict is Verdict.UNSUPPORTED
    assert "blank" in diagnosis.unsupported_reason
