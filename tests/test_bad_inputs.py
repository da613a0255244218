"""The bad-input corpus: every file is either read correctly or refused in one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.errors import XRayReadError
from app.xray import read_xray
from tests.conftest import MODELS_DIR, REPO
from tests.corpus import build_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, xray_paths):
    return build_corpus(xray_paths["hand_1"], tmp_path_factory.mktemp("corpus"))


def test_corpus_is_large_enough(corpus):
    assert len(corpus) >= 40
    assert sum(item.expect == "error" for item in corpus) >= 20


def test_reader_reads_or_refuses_each_file(corpus):
    problems = []
    for item in corpus:
        try:
            xray = read_xray(item.path)
        except XRayReadError as error:
            message = str(error)
            if item.expect == "ok":
                problems.append(f"{item.path.name}: refused ({message})")
            elif item.words and item.words not in message:
                problems.append(f"{item.path.name}: message {message!r} lacks {item.words!r}")
            elif "\n" in message or not message:
                problems.append(f"{item.path.name}: message is not one line")
            continue
        if item.expect == "error":
            problems.append(f"{item.path.name}: read, but should have been refused")
        elif not (xray.pixels.min() >= 0.0 and xray.pixels.max() <= 1.0 and xray.pixels.ndim == 2):
            problems.append(f"{item.path.name}: pixels out of range")
    assert not problems, "\n".join(problems)


def test_cli_processes_the_whole_corpus_in_one_run(corpus):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "--models-dir",
            str(MODELS_DIR),
            "predict",
            "--json",
            *[str(item.path) for item in corpus],
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    expected_errors = [item for item in corpus if item.expect == "error"]
    assert result.returncode == 2
    assert len(errors) == len(expected_errors)
    for item in expected_errors:
        assert any(line.startswith(f"error: {item.path}: ") for line in errors), item.path.name
    payload = json.loads(result.stdout)
    assert len(payload) == sum(item.expect == "ok" for item in corpus)
    assert {entry["verdict"] for entry in payload} <= {"fractured", "normal", "uncertain", "unsupported"}
