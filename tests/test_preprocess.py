"""Named transforms from an XRay to the model input, on real X-rays."""

from __future__ import annotations

import numpy as np

from app.xray import read_xray, to_model_input
from app.xray.preprocess import letterbox, letterbox_offsets, map_to_image, stretch_contrast


def test_model_input_is_square_single_channel_in_unit_range(xray_paths):
    model_input = to_model_input(read_xray(xray_paths["elbow_1"]), 96)
    assert model_input.shape == (96, 96, 1)
    assert model_input.dtype == np.float32
    assert model_input.min() >= 0.0 and model_input.max() <= 1.0
    assert model_input.std() > 0.05  # a real radiograph, not a flat field


def test_contrast_stretch_removes_exposure_differences(xray_paths):
    pixels = read_xray(xray_paths["hand_0"]).pixels
    darker = pixels * 0.5 + 0.1
    assert np.abs(stretch_contrast(pixels) - stretch_contrast(darker)).max() < 1e-4


def test_blank_image_does_not_divide_by_zero():
    assert not stretch_contrast(np.full((64, 64), 0.3, dtype=np.float32)).any()


def test_letterbox_keeps_the_image_centred():
    pixels = np.ones((40, 100), dtype=np.float32)
    square = letterbox(pixels)
    assert square.shape == (100, 100)
    x0, y0, side = letterbox_offsets(100, 40)
    assert (x0, y0, side) == (0, 30, 100)
    assert square[30:70].all() and not square[:30].any() and not square[70:].any()


def test_map_to_image_undoes_the_letterbox():
    square_map = np.zeros((4, 4), dtype=np.float32)
    square_map[:, 2:] = 1.0  # right half of the square is hot
    on_image = map_to_image(square_map, width=50, height=100)
    assert on_image.shape == (100, 50)
    assert on_image[:, -5:].mean() > 0.9 and on_image[:, :5].mean() < 0.1
