"""Display adjustments of the viewer: window/level, invert, rotate, flip.

They make a new picture for the screen; the `XRay` and its `Diagnosis` are never touched, so
the models always read the original pixels. Window and level are in the XRay's own scale
(0 = black, 1 = white as read): the reader already applied a DICOM file's VOI LUT or window,
so the default window (level 0.5, width 1) *is* that file's own window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from app.diagnosis.heatmap import overlay
from app.diagnosis.outlines import draw_outlines
from app.xray import XRay

DEFAULT_LEVEL, DEFAULT_WIDTH = 0.5, 1.0
MIN_WIDTH, MAX_WIDTH = 0.02, 2.0
DRAG_STEP = 1 / 400  # change per dragged screen pixel: 400 px move the level across the whole range


@dataclass(frozen=True)
class ViewAdjustment:
    """How the view differs from the image as read. Rotation and flip are in screen terms:
    the picture is turned `quarter_turns` times clockwise, then mirrored left-right."""

    level: float = DEFAULT_LEVEL  # window centre: lower is brighter
    width: float = DEFAULT_WIDTH  # window width: narrower is more contrast
    inverted: bool = False
    quarter_turns: int = 0  # 0..3, clockwise
    flipped: bool = False

    @property
    def windowed(self) -> bool:
        return (self.level, self.width) != (DEFAULT_LEVEL, DEFAULT_WIDTH)

    @property
    def is_original(self) -> bool:
        return self == ViewAdjustment()

    def dragged(self, dx: float, dy: float) -> ViewAdjustment:
        """A right-button drag: right widens the window (less contrast), left narrows it;
        down raises the level (darker), up lowers it (brighter), as in PACS viewers."""
        width = min(MAX_WIDTH, max(MIN_WIDTH, self.width + dx * DRAG_STEP))
        level = min(1.0, max(0.0, self.level + dy * DRAG_STEP))
        return dataclasses.replace(self, level=level, width=width)

    def toggled_invert(self) -> ViewAdjustment:
        return dataclasses.replace(self, inverted=not self.inverted)

    def rotated(self) -> ViewAdjustment:
        # Turning a mirrored picture clockwise on screen is turning the original anticlockwise.
        step = -1 if self.flipped else 1
        return dataclasses.replace(self, quarter_turns=(self.quarter_turns + step) % 4)

    def toggled_flip(self) -> ViewAdjustment:
        return dataclasses.replace(self, flipped=not self.flipped)


def window_pixels(pixels: np.ndarray, adjustment: ViewAdjustment) -> np.ndarray:
    """Pixels in [0, 1] through the view's window (linear, clipped), inverted if asked."""
    if adjustment.windowed:
        low = adjustment.level - adjustment.width / 2
        pixels = np.clip((pixels - low) / adjustment.width, 0.0, 1.0)
    return 1.0 - pixels if adjustment.inverted else pixels


def orient(image: Image.Image, adjustment: ViewAdjustment) -> Image.Image:
    """Turn clockwise, then mirror: the same as np.fliplr(np.rot90(a, -turns))."""
    turns = {1: Image.Transpose.ROTATE_270, 2: Image.Transpose.ROTATE_180, 3: Image.Transpose.ROTATE_90}
    if adjustment.quarter_turns in turns:
        image = image.transpose(turns[adjustment.quarter_turns])
    if adjustment.flipped:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image


def displayed(
    xray: XRay, heatmap: np.ndarray | None, adjustment: ViewAdjustment, outlines: np.ndarray | None = None
) -> Image.Image:
    """The picture on screen: the windowed grey image (with the heatmap blended over it, its
    colours untouched, and the suspicious regions' `outlines` drawn on top: a bool mask on the
    image's pixels), then turned and mirrored as one, so both stay on their place."""
    gray = window_pixels(xray.pixels, adjustment)
    # A copy of the value for drawing only; the XRay the models read keeps its pixels.
    shown = xray if gray is xray.pixels else dataclasses.replace(xray, pixels=gray)
    image = overlay(shown, heatmap) if heatmap is not None else Image.fromarray(shown.as_uint8(), mode="L")
    if outlines is not None:
        image = draw_outlines(image, outlines)
    return orient(image, adjustment)


def header_window_text(xray: XRay) -> str:
    """Which window a DICOM file opened at, from its header ("" for other files)."""
    header = xray.dicom_header
    if header is None:
        return ""
    if "VOILUTSequence" in header:
        return "Window: the DICOM file's VOI LUT"
    centre, width = header.get("WindowCenter"), header.get("WindowWidth")
    if centre is None or width is None:
        return "Window: the DICOM file's full range"
    return f"Window: the DICOM file's own, C {_first(centre):g} W {_first(width):g}"


def _first(value: object) -> float:
    """The first of a multi-valued attribute, as the reader applies it (index 0)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = value[0]
    return float(value)


def adjustment_text(adjustment: ViewAdjustment, own_window: str = "") -> str:
    """What the view shows, for the corner of the viewer: the file's own window (`own_window`,
    from `header_window_text`) until the user changes it, then what was changed."""
    parts = [f"Level {adjustment.level:.0%} · Width {adjustment.width:.0%}"] if adjustment.windowed else []
    if own_window and not adjustment.windowed:
        parts.append(own_window)
    if adjustment.inverted:
        parts.append("inverted")
    if adjustment.quarter_turns:
        parts.append(f"rotated {90 * adjustment.quarter_turns}°")
    if adjustment.flipped:
        parts.append("flipped")
    if adjustment.is_original:
        return " · ".join(parts)
    return " · ".join(parts) + " — view only, Esc resets"
