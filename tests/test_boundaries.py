"""The design's boundaries, checked on the real import graph."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_gui_does_not_import_tensorflow():
    modules = imported_after("import app.gui.window")
    assert "customtkinter" in modules
    assert not {"tensorflow", "keras"} & modules


def test_engine_does_not_import_gui_code():
    modules = imported_after("import app.diagnosis, app.xray, app.report, app.history, app.cli")
    assert not {"tkinter", "customtkinter", "app.gui"} & modules


def test_training_does_not_import_gui_code():
    modules = imported_after("import training.pipeline, training.publish, training.train")
    assert not {"tkinter", "customtkinter", "app.gui"} & modules
