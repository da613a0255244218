"""The history database: a real SQLite file, WAL mode, surviving a writer killed mid-write."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.history import History
from tests.conftest import MODELS_DIR, REPO

WRITER = """
import sys
from pathlib import Path
from app.diagnosis import Diagnoser
from app.history import History
diagnosis = Diagnoser(Path(sys.argv[1])).diagnose(sys.argv[2], with_heatmap=False)
history = History(Path(sys.argv[3]))
written = 0
while True:
    history.add(diagnosis, sys.argv[2], note="x" * 2000)
    written += 1
    print(written, flush=True)
"""


def test_rows_round_trip(tmp_path, diagnoser, xray_paths):
    history = History(tmp_path / "history.sqlite3")
    diagnosis = diagnoser.diagnose(xray_paths["hand_0"], with_heatmap=False)
    row_id = history.add(diagnosis, str(xray_paths["hand_0"]), note="follow-up")
    row = history.rows()[0]
    assert row.id == row_id
    assert (row.file_name, row.file_sha256, row.part, row.verdict) == (
        diagnosis.file,
        diagnosis.file_sha256,
        diagnosis.part,
        diagnosis.verdict.value,
    )
    assert row.part_probabilities == dict(diagnosis.part_probabilities)
    assert row.fracture_probability == diagnosis.fracture_probability
    assert row.note == "follow-up" and row.model_version == diagnosis.model_version
    journal = sqlite3.connect(history.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"
    history.close()


def test_killed_writer_never_corrupts_earlier_rows(tmp_path, xray_paths):
    database = tmp_path / "history.sqlite3"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(MODELS_DIR), str(xray_paths["elbow_0"]), str(database)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    confirmed = 0
    deadline = time.monotonic() + 180
    while confirmed < 200 and time.monotonic() < deadline:
        line = writer.stdout.readline()
        if not line:
            break
        confirmed = int(line)
    writer.send_signal(signal.SIGKILL)  # mid-loop: likely inside a transaction
    writer.wait(timeout=30)
    assert confirmed >= 200, "the writer did not get going"
    # It kept writing while we stopped reading: its last word is the last committed row.
    later = [int(line) for line in writer.stdout.read().split()]
    confirmed = max([confirmed, *later])
    connection = sqlite3.connect(database)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    count = connection.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
    assert confirmed <= count <= confirmed + 1  # at most the row being written is lost
    connection.close()
    reopened = History(database)
    assert len(reopened.rows(limit=10_000)) == count
    reopened.close()


def test_history_is_used_only_by_the_thread_that_opened_it(tmp_path):
    """One connection, one thread, as History says: sqlite3 refuses another thread's use
    rather than letting two threads race on one connection (issue 13)."""
    history = History(tmp_path / "history.sqlite3")
    other_thread = ThreadPoolExecutor(max_workers=1)
    with pytest.raises(sqlite3.ProgrammingError, match="thread"):
        other_thread.submit(history.rows).result()
    other_thread.shutdown()
    assert history.rows() == []  # the opening thread still uses it
    history.close()


OLD_SCHEMA = """
CREATE TABLE predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_utc TEXT NOT NULL, file_name TEXT NOT NULL,
    file_path TEXT NOT NULL, file_sha256 TEXT NOT NULL, study_id TEXT, part TEXT NOT NULL,
    part_confidence REAL NOT NULL, part_probabilities TEXT NOT NULL, fracture_probability REAL,
    verdict TEXT NOT NULL, model_version TEXT NOT NULL, note TEXT NOT NULL DEFAULT ''
)
"""


def test_a_study_verdict_is_kept_and_an_older_history_gains_its_columns(tmp_path, diagnoser, routed_paths):
    """A history written before study verdicts were kept opens, keeps its rows (no study
    verdict) and stores the study verdict of rows added since."""
    database = tmp_path / "history.sqlite3"
    with sqlite3.connect(database) as old:
        old.execute(OLD_SCHEMA)
        old.execute(
            "INSERT INTO predictions (created_utc, file_name, file_path, file_sha256, part, part_confidence, "
            "part_probabilities, verdict, model_version) VALUES "
            "('2026-01-01T10:00:00+00:00', 'old.png', '/x/old.png', '', 'hand', 0.9, '{}', 'normal', 'v0')"
        )
    old.close()
    history = History(database)
    views = [diagnoser.diagnose(path, with_heatmap=False) for path in routed_paths["hand"]]
    study = diagnoser.aggregate_study(views)
    for path, view in zip(routed_paths["hand"], views):
        history.add(view, str(path), study_id="s1", study=study)
    rows = history.rows()
    assert [(row.study_verdict, row.study_probability) for row in rows[:2]] == [
        (study.verdict.value, study.fracture_probability)
    ] * 2
    assert (rows[2].file_name, rows[2].study_verdict, rows[2].study_probability) == ("old.png", None, None)
    history.export_csv(tmp_path / "history.csv")
    assert "study_verdict,study_probability" in (tmp_path / "history.csv").read_text().splitlines()[0]
    history.close()
