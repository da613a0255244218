"""The desktop window (CustomTkinter). Never imports TensorFlow: the engine loads it on a
worker thread."""

from __future__ import annotations

import sys
from pathlib import Path


def run_app(models_dir: Path | None = None, files: list[Path] | None = None) -> int:
    """Open the window; `files` (from the command line, as a file manager's "Open with" gives
    them) are opened at start."""
    try:
        import tkinter
    except ImportError:
        print("error: Tk is not installed (on Debian/Ubuntu: apt-get install python3-tk)", file=sys.stderr)
        return 2
    try:
        from app.gui.window import BoneFracWindow

        window = BoneFracWindow(models_dir, open_paths=files)
    except tkinter.TclError as error:
        print(f"error: the window cannot open ({error}); use 'bonefrac predict FILE' without a screen", file=sys.stderr)
        return 2
    window.mainloop()
    return 0
