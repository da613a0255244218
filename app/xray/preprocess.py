"""Named transforms from an `XRay` to a model input. Training and the app both call these,
so the model sees in the clinic exactly what it saw in training."""

from __future__ import annotations

import numpy as np
from PIL import Image

from app.xray.image import XRay

# Bump when any transform below changes: cached training inputs are keyed by it.
PREPROCESSING_VERSION = 1
LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5


def stretch_contrast(pixels: np.ndarray) -> np.ndarray:
    """Robust window: map the 0.5th..99.5th percentile to 0..1. Sources differ in exposure;
    this removes most of that difference before the model sees the image."""
    low, high = np.percentile(pixels, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if high - low < 1e-6:
        return np.zeros_like(pixels, dtype=np.float32)
    return np.clip((pixels - low) / (high - low), 0.0, 1.0).astype(np.float32)


def letterbox_offsets(width: int, height: int) -> tuple[int, int, int]:
    """Where an image of this size sits in its square canvas: (x0, y0, side)."""
    side = max(width, height)
    return (side - width) // 2, (side - height) // 2, side


def letterbox(pixels: np.ndarray) -> np.ndarray:
    """Pad to a square with black, centred, keeping the aspect ratio."""
    height, width = pixels.shape
    x0, y0, side = letterbox_offsets(width, height)
    canvas = np.zeros((side, side), dtype=np.float32)
    canvas[y0 : y0 + height, x0 : x0 + width] = pixels
    return canvas


def resize_square(pixels: np.ndarray, size: int) -> np.ndarray:
    image = Image.fromarray(pixels.astype(np.float32), mode="F")
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0), dtype=np.float32)


def to_model_input(xray: XRay, size: int) -> np.ndarray:
    """XRay -> (size, size, 1) float32 in [0, 1]: contrast stretch, letterbox, resize."""
    square = resize_square(letterbox(stretch_contrast(xray.pixels)), size)
    return np.clip(square, 0.0, 1.0)[..., np.newaxis]


def map_to_image(square_map: np.ndarray, width: int, height: int) -> np.ndarray:
    """Take a map over the letterboxed square (any resolution) back onto the image's own
    pixels (height, width): undo the padding, then resize."""
    x0, y0, side = letterbox_offsets(width, height)
    full = resize_square(square_map, side)
    return full[y0 : y0 + height, x0 : x0 + width]
