"""Size limits every reader applies, so a file of any format becomes an image of bounded size."""

from __future__ import annotations

import numpy as np
from PIL import Image

MAX_SIDE = 2048  # pixels kept per side: far above what the models and the screen use
MIN_SIDE = 32  # anything smaller cannot be a radiograph
MAX_PIXELS = 250_000_000  # refuse larger files before decoding them (decompression bombs)


def limit_size(pixels: np.ndarray) -> np.ndarray:
    """Downscale (box filter) so the longer side is at most MAX_SIDE; float32 either way."""
    height, width = pixels.shape
    scale = MAX_SIDE / max(height, width)
    if scale >= 1.0:
        return np.ascontiguousarray(pixels, dtype=np.float32)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(pixels.astype(np.float32), mode="F").resize(size, Image.Resampling.BOX)
    return np.asarray(resized, dtype=np.float32)
