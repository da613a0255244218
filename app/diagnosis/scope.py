"""Cheap checks, before any model, for images the models were never trained on."""

from __future__ import annotations

import numpy as np

from app.xray import XRay

# Radiographs in the training data score 0 (grayscale files) to ~17 (tinted scans);
# photographs score tens. Hasler & Suesstrunk call 15 "slightly", 33 "moderately colourful".
MAX_COLOURFULNESS = 25.0
# The darkest training radiographs still span ~9 grey levels (0.035) between their
# 0.5th and 99.5th percentiles; a blank or uniform image spans almost none.
MIN_DYNAMIC_RANGE = 0.02


def out_of_scope_reason(xray: XRay) -> str | None:
    if xray.colourfulness > MAX_COLOURFULNESS:
        return "the image is in colour: it looks like a photograph, not an X-ray"
    low, high = np.percentile(xray.pixels, [0.5, 99.5])
    if high - low < MIN_DYNAMIC_RANGE:
        return "the image is blank or has almost no contrast"
    return None
