"""Shared fixtures: real X-rays from ../shared/data/xray, the shipped models, a virtual display."""

from __future__ import annotations

import csv
import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("BONEFRAC_DATA", REPO.parent / "shared" / "data" / "xray"))
MODELS_DIR = Path(os.environ.get("BONEFRAC_MODELS", REPO / "models"))


def _manifest_rows() -> list[dict[str, str]]:
    with (DATA_DIR / "manifest.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def data_rows() -> list[dict[str, str]]:
    if not (DATA_DIR / "manifest.csv").is_file():
        pytest.fail(f"the shared X-ray data is missing at {DATA_DIR} (set BONEFRAC_DATA)")
    return _manifest_rows()


@pytest.fixture(scope="session")
def xray_paths(data_rows) -> dict[str, Path]:
    """One validation image for each part/label, e.g. xray_paths["hand_1"]."""
    chosen: dict[str, Path] = {}
    for row in data_rows:
        key = f"{row['part']}_{row['fractured']}"
        if row["split"] == "val" and key not in chosen and row["path"].endswith(".jpg"):
            chosen[key] = DATA_DIR / row["path"]
    return chosen


@pytest.fixture(scope="session")
def diagnoser():
    from app.diagnosis import Diagnoser

    return Diagnoser(MODELS_DIR)


def routed_diagnoses(diagnoser, data_rows: list[dict[str, str]], part: str, limit: int = 60) -> Iterator:
    """(path, diagnosis) of the first `limit` validation X-rays of `part`, in manifest order,
    that the models route to that part's fracture model: in scope, confidently that part."""
    candidates = [DATA_DIR / r["path"] for r in data_rows if r["split"] == "val" and r["part"] == part][:limit]
    for path in candidates:
        diagnosis = diagnoser.diagnose(path, with_heatmap=False)
        routed = diagnosis.part == part and diagnosis.part_confidence >= diagnoser.part_entry.min_confidence
        if routed and not diagnosis.out_of_scope:
            yield path, diagnosis


@pytest.fixture(scope="session")
def routed_paths(diagnoser, data_rows) -> dict[str, list[Path]]:
    """For each part whose fracture model gives verdicts, two validation X-rays of it that the
    shipped models route to that model (found by running them), so tests of a verdict get one."""
    routed: dict[str, list[Path]] = {}
    for part in ("elbow", "hand", "shoulder"):
        if diagnoser.fracture_entry(part).verdicts_withheld:
            continue
        found = [path for path, _ in itertools.islice(routed_diagnoses(diagnoser, data_rows, part), 2)]
        if len(found) < 2:
            pytest.fail(f"the shipped models route fewer than 2 of 60 validation {part} X-rays to the {part} model")
        routed[part] = found
    return routed


@pytest.fixture(scope="session")
def virtual_display():
    """Start Xvfb when there is no display, so real Tk windows open headless."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        pytest.fail("no display and no Xvfb: run 'make test' (it installs xvfb) or set DISPLAY")
    display = ":97"
    process = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{display[1:]}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    os.environ["DISPLAY"] = display
    yield display
    process.terminate()
    process.wait(timeout=10)
    del os.environ["DISPLAY"]
