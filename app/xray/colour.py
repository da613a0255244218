"""Colourfulness: tells a photograph from a radiograph before any model sees it."""

from __future__ import annotations

import numpy as np
from PIL import Image


def measure_colourfulness(image: Image.Image) -> float:
    """Hasler & Suesstrunk (2003) colourfulness on a 0..255 scale: ~0 for a radiograph,
    tens for a photograph. Measured on a small copy: it is a statistic, not a picture."""
    if image.mode in ("L", "LA", "I", "F", "1") or image.mode.startswith("I;16"):
        return 0.0
    small = image.convert("RGB")
    small.thumbnail((256, 256))
    rgb = np.asarray(small, dtype=np.float32)
    red_green = rgb[..., 0] - rgb[..., 1]
    yellow_blue = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    spread = np.hypot(red_green.std(), yellow_blue.std())
    mean = np.hypot(red_green.mean(), yellow_blue.mean())
    return float(spread + 0.3 * mean)
