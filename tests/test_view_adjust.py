"""The viewer's display adjustments as pure pixel transforms, on real X-rays (no Tk)."""

from __future__ import annotations

import numpy as np
import pytest

from app.gui.view_adjust import (
    ViewAdjustment,
    adjustment_text,
    displayed,
    header_window_text,
    window_pixels,
)
from app.xray import read_xray
from tests.dicom_files import write_dicom


@pytest.fixture(scope="module")
def xray(xray_paths):
    return read_xray(xray_paths["hand_1"])


def shown(xray, adjustment: ViewAdjustment) -> np.ndarray:
    return np.asarray(displayed(xray, None, adjustment), dtype=np.int16)


def test_the_original_view_is_the_image_as_read(xray):
    assert ViewAdjustment().is_original
    assert np.array_equal(shown(xray, ViewAdjustment()), xray.as_uint8())


def test_window_and_level_follow_the_linear_window(xray):
    plain = shown(xray, ViewAdjustment())
    narrow = ViewAdjustment().dragged(dx=-200, dy=0)  # left: narrower window, more contrast
    assert narrow.width == pytest.approx(0.5) and narrow.level == 0.5
    expected = np.clip((xray.pixels - 0.25) / 0.5, 0, 1)
    assert np.abs(shown(xray, narrow) - np.rint(expected * 255)).max() <= 1
    assert shown(xray, narrow).std() > plain.std() * 1.3
    brighter = ViewAdjustment().dragged(dx=0, dy=-80)  # up: lower level, brighter
    assert brighter.level == pytest.approx(0.3)
    assert shown(xray, brighter).mean() > plain.mean() + 30
    assert shown(xray, ViewAdjustment().dragged(dx=0, dy=80)).mean() < plain.mean() - 30


def test_dragging_stays_within_bounds():
    far = ViewAdjustment().dragged(dx=-10_000, dy=10_000)
    assert far.width > 0 and far.level == 1.0
    assert ViewAdjustment().dragged(dx=10_000, dy=-10_000).level == 0.0


def test_invert_rotate_flip_are_what_numpy_predicts(xray):
    plain = shown(xray, ViewAdjustment())
    inverted = ViewAdjustment().toggled_invert()
    assert np.abs(shown(xray, inverted) - (255 - plain)).max() <= 1
    turned = ViewAdjustment().rotated()
    assert np.array_equal(shown(xray, turned), np.rot90(plain, -1))  # clockwise
    assert np.array_equal(shown(xray, turned.rotated().rotated().rotated()), plain)
    flipped = turned.toggled_flip()
    assert np.array_equal(shown(xray, flipped), np.fliplr(np.rot90(plain, -1)))
    # R turns what is on screen clockwise, mirrored or not; H mirrors what is on screen.
    assert np.array_equal(shown(xray, flipped.rotated()), np.rot90(shown(xray, flipped), -1))
    assert np.array_equal(shown(xray, flipped.toggled_flip()), shown(xray, turned))


def test_adjustments_never_change_the_xray(xray):
    before = xray.pixels.copy()
    everything = ViewAdjustment().dragged(-150, 60).toggled_invert().rotated().toggled_flip()
    window_pixels(xray.pixels, everything)
    displayed(xray, None, everything)
    assert np.array_equal(xray.pixels, before) and xray.pixels.dtype == np.float32


def test_what_the_corner_says():
    assert adjustment_text(ViewAdjustment()) == ""
    own = "Window: the DICOM file's own, C 1600 W 1600"
    assert adjustment_text(ViewAdjustment(), own) == own
    changed = ViewAdjustment().dragged(-200, -80).toggled_invert().rotated().toggled_flip()
    text = adjustment_text(changed, own)
    assert text == "Level 30% · Width 50% · inverted · rotated 90° · flipped — view only, Esc resets"


def test_a_dicom_names_its_own_window(tmp_path, xray_paths):
    gray = np.asarray(read_xray(xray_paths["elbow_0"]).as_uint8(), dtype=np.uint16) * 16
    windowed = write_dicom(tmp_path / "w.dcm", gray, WindowCenter=1600, WindowWidth=1600)
    assert header_window_text(read_xray(windowed)) == "Window: the DICOM file's own, C 1600 W 1600"
    several = write_dicom(tmp_path / "m.dcm", gray, WindowCenter=[1200, 2000], WindowWidth=[800, 3000])
    assert header_window_text(read_xray(several)).endswith("C 1200 W 800")  # the first, as the reader applies
    bare = write_dicom(tmp_path / "b.dcm", gray)
    assert header_window_text(read_xray(bare)) == "Window: the DICOM file's full range"
    assert header_window_text(read_xray(xray_paths["elbow_0"])) == ""
