"""Training targets with their weights, and the masked losses that read them.

Each target array carries its labels and, in its last columns, the per-sample weights:
  region        (N, R+1): one-hot over REGION_NAMES, then the weight (0 where the region is unknown)
  fracture      (N, 8): a 0/1 label per FRACTURE_HEADS column, then a weight per column
                (0 where that head does not apply to the image)
  fracture_map  (N, G, G, 8): per cell, a 0/1 "inside a fracture box" label per column, then
                a weight per column: the image's fracture weight where its cells are known
                (a normal image: every cell normal; a fractured one with boxes: the boxes'
                cells), 0 where they are not (a fractured image without boxes)
Weights balance fractured and normal *within each source* of a part, so that which
source an image came from tells the loss nothing about its label.
"""

from __future__ import annotations

from collections import Counter

import keras
import numpy as np
from keras import ops

from training.data import Sample
from training.model import FRACTURE_HEADS, REGION_NAMES

MAX_WEIGHT = 4.0
MIN_WEIGHT = 0.25


def _balanced_weights(keys: list[tuple], balance_within: list[tuple]) -> np.ndarray:
    """Weight so each key's total is an equal share of its `balance_within` bucket."""
    key_counts = Counter(keys)
    bucket_counts = Counter(balance_within)
    keys_per_bucket = Counter(bucket for bucket, _ in {(b, k) for b, k in zip(balance_within, keys)})
    weights = np.array(
        [bucket_counts[b] / (keys_per_bucket[b] * key_counts[k]) for k, b in zip(keys, balance_within)],
        dtype=np.float32,
    )
    return np.clip(weights, MIN_WEIGHT, MAX_WEIGHT)


def region_targets(samples: list[Sample], train_parts: bool = True) -> np.ndarray:
    target = np.zeros((len(samples), len(REGION_NAMES) + 1), dtype=np.float32)
    known = [i for i, s in enumerate(samples) if s.region in REGION_NAMES]
    if train_parts and known:
        regions = [(samples[i].region,) for i in known]
        weights = _balanced_weights(regions, [("all",)] * len(known))
        for row, index in enumerate(known):
            target[index, REGION_NAMES.index(samples[index].region)] = 1.0
            target[index, -1] = weights[row]
    return target


def fracture_targets(samples: list[Sample], heads: tuple[str, ...] = FRACTURE_HEADS) -> np.ndarray:
    count = len(FRACTURE_HEADS)
    target = np.zeros((len(samples), 2 * count), dtype=np.float32)
    for column, head in enumerate(FRACTURE_HEADS):
        if head not in heads:
            continue
        members = [i for i, s in enumerate(samples) if head == "any" or s.part == head]
        if not members:
            continue
        keys = [(samples[i].source, samples[i].fractured) for i in members]
        weights = _balanced_weights(keys, [(samples[i].source,) for i in members])
        for row, index in enumerate(members):
            target[index, column] = samples[index].fractured
            target[index, count + column] = weights[row]
    return target


def cells_known(samples: list[Sample]) -> np.ndarray:
    """(N,) 1 where every cell's label is known: normal images, and fractured ones whose boxes
    can be placed (they need the stored image's size)."""
    return np.array([float(not s.fractured or placeable(s)) for s in samples], dtype=np.float32)


def placeable(sample: Sample) -> bool:
    """The sample has fracture boxes and the stored image size needed to place them."""
    return bool(sample.boxes) and sample.width > 0 and sample.height > 0


def box_masks(samples: list[Sample], size: int) -> np.ndarray:
    """(N, size, size) uint8: 255 inside the image's fracture boxes, on the letterboxed square
    the model sees (app.xray.preprocess.letterbox), else 0."""
    masks = np.zeros((len(samples), size, size), dtype=np.uint8)
    for index, sample in enumerate(samples):
        if not placeable(sample):
            continue
        for left, top, right, bottom in square_boxes(sample):
            x0, y0 = int(np.floor(left * size)), int(np.floor(top * size))
            x1, y1 = int(np.ceil(right * size)), int(np.ceil(bottom * size))
            masks[index, max(y0, 0) : max(y1, y0 + 1), max(x0, 0) : max(x1, x0 + 1)] = 255
    return masks


def square_boxes(sample: Sample) -> list[tuple[float, float, float, float]]:
    """The sample's boxes as (left, top, right, bottom) relative to its letterboxed square."""
    side = max(sample.width, sample.height)
    x_pad, y_pad = (side - sample.width) / 2, (side - sample.height) / 2
    boxes = []
    for xc, yc, w, h in sample.boxes:
        left = (x_pad + (xc - w / 2) * sample.width) / side
        top = (y_pad + (yc - h / 2) * sample.height) / side
        boxes.append((left, top, left + w * sample.width / side, top + h * sample.height / side))
    return boxes


@keras.saving.register_keras_serializable(package="bonefrac")
def weighted_region_loss(y_true, y_pred):
    labels, weight = y_true[:, :-1], y_true[:, -1]
    y_pred = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
    per_sample = -ops.sum(labels * ops.log(y_pred), axis=-1)
    return ops.sum(per_sample * weight) / ops.maximum(ops.sum(weight), 1.0)


def _bce(labels, y_pred):
    y_pred = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
    return -(labels * ops.log(y_pred) + (1.0 - labels) * ops.log(1.0 - y_pred))


@keras.saving.register_keras_serializable(package="bonefrac")
def masked_fracture_loss(y_true, y_pred):
    count = len(FRACTURE_HEADS)
    labels, weight = y_true[:, :count], y_true[:, count:]
    return ops.sum(_bce(labels, y_pred) * weight) / ops.maximum(ops.sum(weight), 1.0)


@keras.saving.register_keras_serializable(package="bonefrac")
def fracture_map_loss(y_true, y_pred):
    """Per image and head: mean cross-entropy over the box cells plus mean over the other
    cells, so a small fracture counts as much as the large normal rest of the image."""
    count = len(FRACTURE_HEADS)
    labels, cell_weight = y_true[..., :count], y_true[..., count:]
    bce = _bce(labels, y_pred)
    inside = ops.sum(bce * labels, axis=(1, 2)) / ops.maximum(ops.sum(labels, axis=(1, 2)), 1.0)
    outside = ops.sum(bce * (1.0 - labels), axis=(1, 2)) / ops.maximum(ops.sum(1.0 - labels, axis=(1, 2)), 1.0)
    weight = cell_weight[:, 0, 0, :]  # the same for every cell of an image
    return ops.sum((inside + outside) * weight) / ops.maximum(ops.sum(weight), 1.0)
