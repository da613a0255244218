"""What the window remembers between sessions (the last folder used, whether reports show
patient identifiers), in a small JSON file beside the history database."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from app.atomic import write_text_atomic

SETTINGS_NAME = "settings.json"


class Settings:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # none yet, or damaged: start from the defaults
            self._values = {}
        if not isinstance(self._values, dict):
            self._values = {}

    @property
    def last_folder(self) -> Path:
        """Where file dialogs start: the last folder used while it exists, else the home folder
        (never the program's own folder)."""
        folder = Path(str(self._values.get("last_folder", Path.home())))
        return folder if folder.is_dir() else Path.home()

    def remember_folder(self, folder: Path) -> None:
        self._values["last_folder"] = str(folder)
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
