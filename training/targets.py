"""Training targets with their weights, and the masked losses that read them.

Each target array carries its labels and, in its last columns, the per-sample weights:
  part      (N, 5): one-hot over PART_NAMES, then the weight (0 where the part is unknown)
  fracture  (N, 8): a 0/1 label per FRACTURE_HEADS column, then a weight per column
                    (0 where that head does not apply to the image)
Weights balance fractured and normal *within each source* of a part, so that which
source an image came from tells the loss nothing about its label.
"""

from __future__ import annotations

from collections import Counter

import keras
import numpy as np
from keras import ops

from training.data import Sample
from training.model import FRACTURE_HEADS, PART_NAMES

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


def part_targets(samples: list[Sample], train_parts: bool = True) -> np.ndarray:
    target = np.zeros((len(samples), len(PART_NAMES) + 1), dtype=np.float32)
    known = [i for i, s in enumerate(samples) if s.part in PART_NAMES]
    if train_parts and known:
        parts = [(samples[i].part,) for i in known]
        weights = _balanced_weights(parts, [("all",)] * len(known))
        for row, index in enumerate(known):
            target[index, PART_NAMES.index(samples[index].part)] = 1.0
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


@keras.saving.register_keras_serializable(package="bonefrac")
def weighted_part_loss(y_true, y_pred):
    labels, weight = y_true[:, :-1], y_true[:, -1]
    y_pred = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
    per_sample = -ops.sum(labels * ops.log(y_pred), axis=-1)
    return ops.sum(per_sample * weight) / ops.maximum(ops.sum(weight), 1.0)


@keras.saving.register_keras_serializable(package="bonefrac")
def masked_fracture_loss(y_true, y_pred):
    count = len(FRACTURE_HEADS)
    labels, weight = y_true[:, :count], y_true[:, count:]
    y_pred = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
    bce = -(labels * ops.log(y_pred) + (1.0 - labels) * ops.log(1.0 - y_pred))
    return ops.sum(bce * weight) / ops.maximum(ops.sum(weight), 1.0)
