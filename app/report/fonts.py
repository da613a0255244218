"""Fonts shipped in assets/, so reports look the same on every workstation."""

import functools

from app.locations import shipped_assets_dir

FONT_DIR = shipped_assets_dir() / "fonts"
REGULAR_FONT = FONT_DIR / "DejaVuSans.ttf"
BOLD_FONT = FONT_DIR / "DejaVuSans-Bold.ttf"


@functools.cache
def _drawable_code_points() -> frozenset[int]:
    from fontTools.ttLib import TTFont  # fpdf2's own dependency

    covered = []
    for path in (REGULAR_FONT, BOLD_FONT):
        with TTFont(path) as font:
            covered.append(set(font.getBestCmap()))
    return frozenset(set.intersection(*covered))


def printable(text: str) -> str:
    """Text the report fonts can draw. A character they lack (a CJK file name, say) is written
    as its code point, U+624B, instead of an empty box, so the name can still be matched."""
    drawable = _drawable_code_points()
    return "".join(c if ord(c) in drawable or c == "\n" else f"<U+{ord(c):04X}>" for c in text)
