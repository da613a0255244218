"""Fracture windows on real manifest rows: where crops fall, what they are labelled, and the
window arithmetic the app uses to score a whole image."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from app.diagnosis.window import most_suspicious_window, window_corners, window_crops, window_heatmap
from app.xray import read_xray, to_model_input
from tests.conftest import DATA_DIR
from training.crops import BOX_MARGIN, Rect, WindowData, box_rects, content_rect, item_targets, plan_epoch, upright
from training.data import Sample, load_pixels, load_samples, parse_boxes
from training.model import FRACTURE_HEADS, PART_NAMES

CANVAS, WINDOW = 320, 96


@pytest.fixture(scope="module")
def train_samples():
    samples = load_samples(DATA_DIR)
    return [s for s in samples if s.split == "train" and s.source != "multiregion" and s.part in PART_NAMES][:400]


def test_boxes_are_read_from_the_manifest(train_samples):
    fractured = [s for s in train_samples if s.fractured]
    assert fractured and all(s.boxes for s in fractured)  # the shared data boxes every fracture
    assert all(s.width > 0 and s.height > 0 for s in train_samples)
    assert parse_boxes("0.5 0.5 0.2 0.1;0.1 0.2 0.05 0.05") == ((0.5, 0.5, 0.2, 0.1), (0.1, 0.2, 0.05, 0.05))
    assert parse_boxes("") == ()


def test_content_and_boxes_follow_the_letterbox(train_samples):
    tall = dataclasses.replace(train_samples[0], width=200, height=400, boxes=((0.5, 0.25, 0.5, 0.5),))
    content = content_rect(tall, 320)
    assert (content.x0, content.y0, content.x1, content.y1) == (80.0, 0.0, 240.0, 320.0)
    (box,) = box_rects(tall, 320)
    assert (box.x0, box.y0, box.x1, box.y1) == (120.0, 0.0, 200.0, 160.0)


def test_letterbox_padding_lies_outside_the_content_rect(train_samples):
    sample = next(s for s in train_samples if abs(s.width - s.height) > 50)
    canvas = to_model_input(read_xray(sample.path), CANVAS)[..., 0]
    content = content_rect(sample, CANVAS)
    rows, columns = np.nonzero(canvas > 0)
    assert rows.min() >= int(content.y0) and rows.max() < np.ceil(content.y1)
    assert columns.min() >= int(content.x0) and columns.max() < np.ceil(content.x1)


def test_crops_hold_their_fracture_or_miss_every_box(train_samples):
    items = plan_epoch(train_samples, np.random.default_rng(7), CANVAS, WINDOW)
    crops = [item for item in items if item.crop is not None]
    assert {item.sample.fractured for item in crops} == {0, 1}
    for item in crops:
        x, y = item.crop
        assert 0 <= x <= CANVAS - WINDOW and 0 <= y <= CANVAS - WINDOW
        window = Rect(x, y, x + WINDOW, y + WINDOW)
        boxes = box_rects(item.sample, CANVAS)
        if item.sample.fractured:  # a positive holds the centre of one of its image's boxes
            assert any(x <= (b.x0 + b.x1) / 2 <= x + WINDOW and y <= (b.y0 + b.y1) / 2 <= y + WINDOW for b in boxes)
        else:  # a negative keeps clear of every box of its image, fractured or not
            original = next(s for s in train_samples if s.path == item.sample.path)
            assert not any(window.overlaps(box, BOX_MARGIN) for box in box_rects(original, CANVAS))
    # Fractured images also give negatives: the label follows the crop, not the picture.
    source_fractured = {s.path for s in train_samples if s.fractured}
    assert any(item.sample.path in source_fractured and not item.sample.fractured for item in crops)


def test_whole_images_teach_the_part_and_crops_the_fracture_heads(train_samples):
    items = plan_epoch(train_samples, np.random.default_rng(3), CANVAS, WINDOW)
    targets = item_targets(items)
    heads = len(FRACTURE_HEADS)
    for row, item in enumerate(items):
        part_weight, fracture_weights = targets["part"][row, -1], targets["fracture"][row, heads:]
        if item.crop is None:
            assert part_weight > 0 and not fracture_weights.any()
        else:
            assert part_weight == 0 and fracture_weights[FRACTURE_HEADS.index("any")] > 0


def test_windows_cover_the_canvas_at_half_a_window_apart():
    corners = window_corners(320, 96)
    assert corners[0] == 0 and corners[-1] == 320 - 96
    assert max(np.diff(corners)) <= 48 and min(np.diff(corners)) > 0
    assert window_corners(64, 64) == [0]
    image = np.random.default_rng(0).random((320, 320, 1)).astype(np.float32)
    crops = window_crops(image, 96)
    assert crops.shape == (len(corners) ** 2, 96, 96, 1)
    y, x = corners[1], corners[2]  # row by row: window (1, 2)
    np.testing.assert_array_equal(crops[len(corners) + 2], image[y : y + 96, x : x + 96])


def test_most_suspicious_window_and_its_heatmap():
    corners = window_corners(320, 96)
    probabilities = np.full(len(corners) ** 2, 0.1)
    hot = 2 * len(corners) + 3  # window row 2, column 3
    probabilities[hot] = 0.9
    assert most_suspicious_window(probabilities) == pytest.approx(0.9)
    heatmap = window_heatmap(probabilities, 320, 96)
    assert heatmap.shape == (40, 40)
    row, column = np.unravel_index(np.argmax(heatmap), heatmap.shape)
    y, x = corners[2], corners[3]
    assert y <= row * 8 < y + 96 and x <= column * 8 < x + 96
    assert heatmap.min() == pytest.approx(0.1)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_boxes_follow_the_reader_turning_exif_rotated_images_upright(tmp_path, orientation):
    pixels = np.full((60, 100), 40, dtype=np.uint8)
    pixels[10:16, 70:76] = 255  # the "fracture": a bright square at x 70-75, y 10-15 of the stored image
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "rotated.png"
    Image.fromarray(pixels).save(path, exif=exif.tobytes())
    sample = Sample(
        path, "hand", 1, "test", "g", "train", boxes=((73 / 100, 13 / 60, 0.06, 0.1),), width=100, height=60
    )
    turned = upright(sample)
    xray = read_xray(path)
    assert (turned.height, turned.width) == xray.pixels.shape
    (xc, yc, _, _) = turned.boxes[0]
    row, column = np.unravel_index(np.argmax(xray.pixels), xray.pixels.shape)
    assert abs(xc * turned.width - column) <= 4 and abs(yc * turned.height - row) <= 4


def test_window_data_batches_line_up_with_their_targets(tmp_path, train_samples):
    chosen = [s for s in train_samples if s.part in ("hand", "elbow", "shoulder")][:40]
    whole, kept = load_pixels(chosen, 64, tmp_path)
    canvases, same = load_pixels(kept, 128, tmp_path)
    assert same == kept
    data = WindowData(whole, canvases, kept, batch_size=8, seed=5)
    length, (items, targets) = len(data), data.plan
    images, batch_targets = data[1]
    assert images.shape == (8, 64, 64, 1) and batch_targets["part"].shape[0] == 8
    for row, item in enumerate(items[8:16]):
        expected = (
            whole[item.index]
            if item.crop is None
            else canvases[item.index][item.crop[1] : item.crop[1] + 64, item.crop[0] : item.crop[0] + 64]
        )
        np.testing.assert_allclose(images[row, ..., 0], expected / 255.0, atol=1e-6)
        np.testing.assert_array_equal(batch_targets["fracture"][row], targets["fracture"][8 + row])
    data.start_epoch(3)  # validation data keeps its crops: its loss is comparable between epochs
    assert data.plan[0] == items
    training = WindowData(whole, canvases, kept, batch_size=8, seed=5, augment=lambda x, training: x)
    first = training.plan[0]
    training.start_epoch(1)
    assert len(training) == len(data) == length and training.plan[0] != first  # new crops, same length
    training.start_epoch(0)
    assert training.plan[0] == first  # epoch number and seed decide the crops: resuming redraws the same
