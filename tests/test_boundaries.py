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


def _project_imports(path) -> list[tuple[str, str]]:
    """(module, name) for every `from app... / training... import name` in a file."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("app", "training"):
            found += [(node.module, alias.name) for alias in node.names]
    return found


def test_no_module_borrows_another_modules_private_names():
    borrowed = [
        f"{path.relative_to(REPO)}: {module}.{name}"
        for folder in ("app", "training", "bench")
        for path in sorted((REPO / folder).rglob("*.py"))
        for module, name in _project_imports(path)
        if name.startswith("_") and not name.endswith("__")
    ]
    assert borrowed == []


def test_the_reader_modules_import_no_cycle():
    """app/xray: the formats' readers import shared modules, never each other back."""
    xray = REPO / "app" / "xray"
    edges = {
        path.stem: {module.rsplit(".", 1)[-1] for module, _ in _project_imports(path) if module.startswith("app.xray.")}
        for path in xray.glob("*.py")
    }
    for module, targets in edges.items():
        for target in targets:
            assert module not in edges.get(target, set()), f"app.xray.{module} and app.xray.{target} import each other"
