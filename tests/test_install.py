"""`pip install .` (not editable) gives a bonefrac that finds its shipped models and fonts
wherever it runs: built as a wheel, installed into a folder of its own, run from elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("install")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", str(REPO), "--no-deps", "-w", str(root / "wheel")], check=True, timeout=600)
    (wheel,) = (root / "wheel").glob("bonefrac-*.whl")
    # Dependencies come from this environment; the package itself only from the wheel.
    subprocess.run([*pip, "install", "--no-deps", "--target", str(root / "site"), str(wheel)], check=True, timeout=600)
    return root


def _run_installed(root, *arguments: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root / "site"), "BONEFRAC_HOME": str(root / "home")}
    return subprocess.run(
        [str(root / "site" / "bin" / "bonefrac"), *arguments],
        capture_output=True,
        text=True,
        cwd=root,  # not the checkout: nothing may be found there by accident
        env=env,
        timeout=600,
    )


def test_installed_package_runs_from_its_own_files(installed):
    code = "import app, app.locations as where; print(app.__file__)"
    code += "; print(where.shipped_models_dir()); print(where.shipped_assets_dir())"
    env = {**os.environ, "PYTHONPATH": str(installed / "site")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=installed, env=env)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.split():
        assert line.startswith(str(installed / "site")), line


def test_installed_bonefrac_predicts_and_writes_a_report_with_the_shipped_models(installed, xray_paths):
    report = installed / "hand.pdf"
    result = _run_installed(installed, "predict", str(xray_paths["hand_1"]), "--json", "--report", str(report))
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)
    shipped = json.loads((REPO / "models" / "manifest.json").read_text())
    assert entry["model_version"] == shipped["model_version"]
    assert report.read_bytes().startswith(b"%PDF")
