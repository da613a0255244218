"""Capture exactly the app window: geometry from Tk itself, pixels from the screen."""

from __future__ import annotations

import io
import tkinter
from pathlib import Path

from PIL import Image

from app.atomic import write_bytes_atomic


def window_bbox(window: tkinter.Misc) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the window's content on the screen."""
    window.update_idletasks()
    left, top = window.winfo_rootx(), window.winfo_rooty()
    return left, top, left + window.winfo_width(), top + window.winfo_height()


def grab_window(window: tkinter.Misc) -> Image.Image:
    bbox = window_bbox(window)
    try:
        from PIL import ImageGrab

        return ImageGrab.grab(bbox=bbox)  # X11 (XCB), Windows and macOS
    except OSError:
        import pyautogui  # falls back to the platform's own screenshot tool

        left, top, right, bottom = bbox
        return pyautogui.screenshot(region=(left, top, right - left, bottom - top))


def save_window_screenshot(window: tkinter.Misc, path: Path, image: Image.Image | None = None) -> Path:
    """Save `image` (a capture taken earlier, before a save dialog covered the window), or the
    window as it is now."""
    image = grab_window(window) if image is None else image
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    write_bytes_atomic(Path(path), buffer.getvalue())
    return Path(path)
