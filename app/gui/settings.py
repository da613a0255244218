"""What the window remembers between sessions (the last folders used to open and to save,
whether reports show patient identifiers, how the worklist groups files), in a small JSON
file beside the history database."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from app.atomic import write_text_atomic

SETTINGS_NAME = "settings.json"
OPEN, SAVE = "open", "save"  # the two folders file dialogs remember


class Settings:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # none yet, or damaged: start from the defaults
            self._values = {}
        if not isinstance(self._values, dict):
            self._values = {}

    def last_folder(self, purpose: str) -> Path:
        """Where a file dialog starts: the last folder used for that purpose (OPEN: X-rays read;
        SAVE: reports, screenshots, exports), kept apart so saving a report elsewhere does not
        move where the next X-ray is looked for. A first save starts beside the X-rays opened.
        A folder that no longer exists gives the home folder (never the program's own)."""
        keys = {OPEN: ["last_open_folder"], SAVE: ["last_save_folder", "last_open_folder"]}[purpose]
        for key in [*keys, "last_folder"]:  # "last_folder": the one memory of earlier versions
            if key in self._values:
                folder = Path(str(self._values[key]))
                return folder if folder.is_dir() else Path.home()
        return Path.home()

    def remember_folder(self, purpose: str, folder: Path) -> None:
        self._values[f"last_{purpose}_folder"] = str(folder)
        self._save()

    @property
    def one_study_per_image(self) -> bool:
        """The worklist lists each non-DICOM image as a study of its own (off: one per folder)."""
        return self._values.get("one_study_per_image") is True

    @one_study_per_image.setter
    def one_study_per_image(self, on: bool) -> None:
        self._values["one_study_per_image"] = bool(on)
        self._save()

    @property
    def patient_identifiers_on_reports(self) -> bool:
        """Off unless the user turned it on: a report may leave the workstation."""
        return self._values.get("patient_identifiers_on_reports") is True

    @patient_identifiers_on_reports.setter
    def patient_identifiers_on_reports(self, shown: bool) -> None:
        self._values["patient_identifiers_on_reports"] = bool(shown)
        self._save()

    def _save(self) -> None:
        # Only a convenience: where it cannot be written, the next session starts from the defaults.
        with contextlib.suppress(OSError):
            write_text_atomic(self.path, json.dumps(self._values, indent=2) + "\n")
