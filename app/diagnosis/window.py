"""Fracture probability from the most suspicious window of the image.

A fracture model trained on crops (training/crops.py) runs once over the whole image at a
larger size. Its fracture head is linear on average-pooled features, so the logit of any
window of the feature map is the mean of that window's cell logits (the exact class
activation map), and the image's probability is that of its highest-scoring window.
"""

from __future__ import annotations

import numpy as np


def cell_logits(features: np.ndarray, kernel: np.ndarray, bias: float) -> np.ndarray:
    """(H, W, C) feature map and one head's (C,) weights -> (H, W) logits."""
    return features @ kernel + bias


def window_logits(cells: np.ndarray, window_cells: int) -> np.ndarray:
    """Mean of every `window_cells` x `window_cells` block of an (H, W) map (a box filter
    without padding), from cumulative sums. A map smaller than the window is one window."""
    size = max(1, min(window_cells, *cells.shape))
    total = np.pad(cells.astype(np.float64).cumsum(axis=0).cumsum(axis=1), ((1, 0), (1, 0)))
    sums = total[size:, size:] - total[:-size, size:] - total[size:, :-size] + total[:-size, :-size]
    return sums / (size * size)


def cells_per_window(window_px: int, canvas_px: int, map_side: int) -> int:
    """How many feature-map cells a window of `window_px` spans on a `canvas_px` input."""
    return max(1, round(window_px * map_side / canvas_px))


def most_suspicious_window(
    features: np.ndarray, kernel: np.ndarray, bias: float, window_px: int, canvas_px: int
) -> float:
    """The image's fracture probability: the sigmoid of its highest window logit."""
    windows = window_logits(
        cell_logits(features, kernel, bias), cells_per_window(window_px, canvas_px, features.shape[0])
    )
    return float(1.0 / (1.0 + np.exp(-float(windows.max()))))
