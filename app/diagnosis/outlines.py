"""Suspicious regions: the cells of a fracture map at or above the routed model's rule-in
threshold, outlined on the X-ray's own pixels.

Only a FRACTURE_MAP holds a probability per cell; an older model's ACTIVATION_MAP is relative
(scaled to its own range), so there is nothing to hold against a threshold and no outline.
The image probability is a log-sum-exp pool of the cells, never above the largest one, so a
"fractured" verdict always has at least one region.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from app.diagnosis.value import FRACTURE_MAP, Diagnosis
from app.xray.preprocess import letterbox_offsets

# Magenta is in none of the heatmap's colours (blue, cyan, yellow, red) nor in a grey X-ray.
OUTLINE_COLOUR = (255, 0, 255)


def outlines_apply(diagnosis: Diagnosis | None) -> bool:
    """Whether this result can have outlines: a verdict, its thresholds and a fracture map."""
    return (
        diagnosis is not None
        and diagnosis.supported
        and diagnosis.thresholds is not None
        and diagnosis.heatmap is not None
        and diagnosis.heatmap_kind == FRACTURE_MAP
    )


def suspicious_cells(diagnosis: Diagnosis) -> np.ndarray:
    """(rows, cols) bool over the map's grid: cells at or above rule-in (all False without outlines)."""
    if not outlines_apply(diagnosis):
        shape = diagnosis.heatmap.shape if diagnosis.heatmap is not None else (1, 1)
        return np.zeros(shape, dtype=bool)
    return np.asarray(diagnosis.heatmap) >= diagnosis.thresholds.rule_in


def suspicious_mask(diagnosis: Diagnosis, width: int, height: int) -> np.ndarray:
    """(height, width) bool on the image's own pixels: the suspicious cells, each a block.
    The same letterbox as `map_to_image` (the heatmap's geometry), but each pixel takes its
    cell's value as it is: an interpolated 0/1 map would round the corners off a region."""
    cells = suspicious_cells(diagnosis)
    x0, y0, side = letterbox_offsets(width, height)
    rows, cols = cells.shape
    # Cell k spans the square's pixels [k * side / n, (k + 1) * side / n).
    row_of = (np.arange(y0, y0 + height) * rows) // side
    col_of = (np.arange(x0, x0 + width) * cols) // side
    return cells[np.ix_(row_of, col_of)]


def outline_thickness(width: int, height: int) -> int:
    """A few pixels, more on a large image, so the line is visible when it is fitted to a screen."""
    return max(2, round(max(width, height) / 250))


def outline_of(mask: np.ndarray, thickness: int) -> np.ndarray:
    """The mask minus its erosion by a (2t+1)-pixel square: a closed band `thickness` pixels wide
    inside each region's edge (the image's edge counts as outside, so a region there is closed)."""
    outside = np.pad(~mask, thickness, constant_values=True).astype(np.int32)
    window = 2 * thickness + 1
    # Outside pixels within the window, by running sums along each axis (a box filter).
    rows = np.cumsum(np.pad(outside, ((0, 0), (1, 0))), axis=1)
    rows = rows[:, window:] - rows[:, :-window]
    both = np.cumsum(np.pad(rows, ((1, 0), (0, 0))), axis=0)
    both = both[window:] - both[:-window]
    return mask & (both > 0)


def outline_mask(diagnosis: Diagnosis | None, width: int, height: int) -> np.ndarray | None:
    """(height, width) bool: the outline pixels of the suspicious regions, or None when there is
    none to draw (no outlines apply, or no cell reaches rule-in)."""
    if not outlines_apply(diagnosis):
        return None
    mask = suspicious_mask(diagnosis, width, height)
    if not mask.any():
        return None
    return outline_of(mask, outline_thickness(width, height))


def draw_outlines(image: Image.Image, outline: np.ndarray) -> Image.Image:
    """A copy of `image` (same size as `outline`) in RGB with the outline pixels painted."""
    pixels = np.array(image.convert("RGB"))
    pixels[outline] = OUTLINE_COLOUR
    return Image.fromarray(pixels, mode="RGB")
