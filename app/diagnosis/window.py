"""Fracture probability from the most suspicious window of the image.

A fracture model trained on crops (training/crops.py) is run on crops again: the image is
letterboxed to the larger canvas it was cropped from in training, cut into overlapping
windows of the training crop size, and the image's probability is that of its most
suspicious window. The model thus sees in the clinic exactly what it saw in training, crop
for crop (running it once over the whole canvas would not: every feature cell would then
see far more context than a crop holds). The window probabilities, spread back over the
canvas, are the heatmap.
"""

from __future__ import annotations

import numpy as np

STRIDE_FRACTION = 0.5  # windows overlap by half: a fracture is always near some window's centre


def window_corners(canvas: int, window: int) -> list[int]:
    """Top-left offsets along one side, evenly spaced from 0 to canvas - window, at most half a
    window apart."""
    if canvas <= window:
        return [0]
    steps = int(np.ceil((canvas - window) / (window * STRIDE_FRACTION)))
    return [round(i * (canvas - window) / steps) for i in range(steps + 1)]


def window_crops(image: np.ndarray, window: int) -> np.ndarray:
    """(canvas, canvas, 1) model input -> (K, window, window, 1), row by row."""
    corners = window_corners(image.shape[0], window)
    return np.stack([image[y : y + window, x : x + window] for y in corners for x in corners])


def most_suspicious_window(probabilities: np.ndarray) -> float:
    """The image's fracture probability from its windows' probabilities (K,)."""
    return float(np.max(probabilities))


def window_heatmap(probabilities: np.ndarray, canvas: int, window: int, cell: int = 8) -> np.ndarray:
    """(K,) window probabilities -> a (canvas/cell, canvas/cell) map over the canvas: each
    point the mean probability of the windows that cover it."""
    corners = window_corners(canvas, window)
    side = int(np.ceil(canvas / cell))
    total, count = np.zeros((side, side)), np.zeros((side, side))
    for index, (y, x) in enumerate((y, x) for y in corners for x in corners):
        rows = slice(y // cell, int(np.ceil((y + window) / cell)))
        columns = slice(x // cell, int(np.ceil((x + window) / cell)))
        total[rows, columns] += probabilities[index]
        count[rows, columns] += 1
    return (total / np.maximum(count, 1)).astype(np.float32)
