"""Render a heatmap over its X-ray: a fracture map (each cell's fracture probability), or for
older models their class activation map scaled to [0, 1]."""

from __future__ import annotations

import numpy as np
from PIL import Image

from app.xray import XRay
from app.xray.preprocess import map_to_image

# A perceptually ordered ramp (dark blue -> cyan -> yellow -> red), no plotting library needed.
_RAMP_POSITIONS = np.array([0.0, 0.35, 0.65, 1.0])
_RAMP_COLOURS = np.array([[20, 30, 140], [0, 190, 220], [250, 220, 40], [220, 30, 30]], dtype=np.float32)


def colourise(values: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 colours."""
    channels = [np.interp(values, _RAMP_POSITIONS, _RAMP_COLOURS[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).astype(np.uint8)


def overlay(xray: XRay, heatmap: np.ndarray, opacity: float = 0.45) -> Image.Image:
    """The X-ray in grey with the heatmap blended on top; strongest where the model looked most."""
    gray = np.repeat(xray.as_uint8()[..., np.newaxis], 3, axis=-1).astype(np.float32)
    on_image = np.clip(map_to_image(heatmap, xray.width, xray.height), 0.0, 1.0)
    colours = colourise(on_image).astype(np.float32)
    # Weight the blend by the map itself, so cold regions leave the radiograph readable.
    alpha = (opacity * on_image)[..., np.newaxis]
    blended = gray * (1.0 - alpha) + colours * alpha
    return Image.fromarray(np.clip(blended, 0, 255).astype(np.uint8), mode="RGB")
