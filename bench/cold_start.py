"""Child of bench/run.py: open the window, then show the first diagnosis; print the times
since the parent launched this process (argv[1] is its wall-clock launch time)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

launched = float(sys.argv[1])
image = Path(sys.argv[2])
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.gui.window import BoneFracWindow  # noqa: E402

window = BoneFracWindow()
window.update()
print(f"window_shown_s={time.time() - launched:.3f}", flush=True)
window.load_paths([image])


def poll() -> None:
    if window.can_predict() and window.current_view and window.current_view.diagnosis is None and not window.predicting:
        window.predict()
    if window.current_view is not None and window.current_view.diagnosis is not None:
        window.update_idletasks()
        print(f"first_diagnosis_s={time.time() - launched:.3f}", flush=True)
        window.close()
        return
    window.after(10, poll)


window.after(10, poll)
window.mainloop()
