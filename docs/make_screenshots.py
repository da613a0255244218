"""Screenshots of the window's main states for the README, taken from the real app.

python docs/make_screenshots.py      # needs a display; use `xvfb-run -s "-screen 0 1400x900x24"` without one
"""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "docs" / "screenshots"
DATA = REPO.parent / "shared" / "data" / "xray"

from app.gui.screenshot import save_window_screenshot  # noqa: E402
from app.gui.window import BoneFracWindow  # noqa: E402


def val_image(part: str, fractured: str) -> Path:
    with (DATA / "manifest.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["split"] == "val" and row["part"] == part and row["fractured"] == fractured:
                return DATA / row["path"]
    raise LookupError(part)


def settle(window: BoneFracWindow, condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        window.update()
        time.sleep(0.02)
    for _ in range(20):
        window.update()
        time.sleep(0.01)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp())
    window = BoneFracWindow(history_path=home / "history.sqlite3")
    window.geometry("1280x800+0+0")
    settle(window, lambda: True)
    window.save_screenshot(OUT / "1-starting.png")
    settle(window, lambda: window.diagnoser is not None)

    window.load_paths([val_image("hand", "1")])
    settle(window, lambda: bool(window.views))
    window.predict()
    settle(window, lambda: not window.predicting)
    window.save_screenshot(OUT / "2-result.png")
    window.heatmap_switch.select()
    window.render_image()
    settle(window, lambda: True)
    window.save_screenshot(OUT / "3-heatmap.png")
    window.heatmap_switch.deselect()
    window.render_image()
    # What a right-button drag (narrower window, a little darker) and I (invert) give.
    window.viewer.adjust(window.viewer.adjustment.dragged(-160, 24).toggled_invert())
    settle(window, lambda: True)
    window.save_screenshot(OUT / "7-windowed.png")
    window.reset_view()

    window.load_paths([val_image("elbow", "1"), val_image("elbow", "0"), val_image("other", "0")])
    settle(window, lambda: len(window.views) == 3)
    window.predict()
    settle(window, lambda: not window.predicting)
    window.save_screenshot(OUT / "4-study.png")

    # A folder of two clinics' images, predicted as a worklist, most suspicious first.
    folder = home / "worklist"
    for index, (part, fractured) in enumerate([("hand", "1"), ("elbow", "0"), ("shoulder", "1"), ("hand", "0")]):
        clinic = folder / ("clinic A" if index % 2 else "clinic B") / f"patient {index + 1}"
        clinic.mkdir(parents=True)
        shutil.copy(val_image(part, fractured), clinic / f"view{index + 1}.jpg")
    exports = folder / "exports"  # unrelated exports of different parts: one "Mixed" study
    exports.mkdir()
    for part, fractured in [("hand", "1"), ("elbow", "0")]:
        shutil.copy(val_image(part, fractured), exports / f"{part}.jpg")
    window.open_folder(folder)
    worklist = window.worklist
    settle(window, lambda: worklist.grouped)
    worklist.predict_all()
    settle(window, lambda: not worklist.running)
    save_window_screenshot(worklist, OUT / "8-worklist.png")  # the list itself, as wide as its columns
    worklist.destroy()

    window.show_history()  # it opens over the main window by itself
    settle(window, lambda: True)
    window.save_screenshot(OUT / "5-history.png")
    window.history_window.destroy()

    bad = home / "request_form.png"
    bad.write_text("not an image")
    window.load_paths([bad])
    settle(window, lambda: bool(window.dialogs))
    window.dialogs[-1].geometry("+300+250")
    settle(window, lambda: True)
    window.save_screenshot(OUT / "6-error.png")
    window.close()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
