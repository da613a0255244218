"""Every prediction, kept in a local SQLite database (WAL mode) in the user's data folder.

Rows are written in one transaction each, so a crash loses at most the row being written.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from app.atomic import write_text_atomic
from app.diagnosis.value import Diagnosis, StudyDiagnosis

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_utc TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_path TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    study_id TEXT,
    part TEXT NOT NULL,
    part_confidence REAL NOT NULL,
    part_probabilities TEXT NOT NULL,
    fracture_probability REAL,
    verdict TEXT NOT NULL,
    model_version TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    study_verdict TEXT,
    study_probability REAL
)
"""
# Columns added since the first release, with their types: a database made before gets them.
ADDED_COLUMNS = {"study_verdict": "TEXT", "study_probability": "REAL"}
CSV_COLUMNS = (
    "id",
    "created_utc",
    "file_name",
    "file_sha256",
    "study_id",
    "study_verdict",
    "study_probability",
    "part",
    "part_confidence",
    "fracture_probability",
    "verdict",
    "model_version",
    "note",
)


def default_history_path() -> Path:
    """$BONEFRAC_HOME/history.sqlite3, else the platform's user data folder."""
    home = os.environ.get("BONEFRAC_HOME")
    if home:
        return Path(home) / "history.sqlite3"
    from platformdirs import user_data_dir

    return Path(user_data_dir("bonefrac", appauthor=False)) / "history.sqlite3"


def local_time(created_utc: str) -> str:
    """A stored UTC time as this computer's local time, to the minute: '2026-11-29 18:11'."""
    return dt.datetime.fromisoformat(created_utc).astimezone().strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class HistoryRow:
    id: int
    created_utc: str
    file_name: str
    file_path: str
    file_sha256: str
    study_id: str | None
    part: str
    part_confidence: float
    part_probabilities: dict[str, float]
    fracture_probability: float | None
    verdict: str
    model_version: str
    note: str
    # The verdict and probability of the study this view was predicted in (None for one view).
    study_verdict: str | None = None
    study_probability: float | None = None


class History:
    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path or default_history_path())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection per History, used by the thread that opened it (the GUI's Tk thread):
        # sqlite3's own check refuses any other thread, so a misuse fails instead of racing.
        self._connection = sqlite3.connect(self.path, timeout=10)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        with self._connection:
            self._connection.execute(SCHEMA)
            present = {row[1] for row in self._connection.execute("PRAGMA table_info(predictions)")}
            for column, kind in ADDED_COLUMNS.items():
                if column not in present:
                    self._connection.execute(f"ALTER TABLE predictions ADD COLUMN {column} {kind}")

    def close(self) -> None:
        self._connection.close()

    def add(
        self,
        diagnosis: Diagnosis,
        file_path: str,
        note: str = "",
        study_id: str | None = None,
        study: StudyDiagnosis | None = None,
    ) -> int:
        """One view; `study`: the study it was predicted in, whose verdict each of its rows keeps."""
        with self._connection:
            cursor = self._connection.execute(
                "INSERT INTO predictions (created_utc, file_name, file_path, file_sha256, study_id, part, "
                "part_confidence, part_probabilities, fracture_probability, verdict, model_version, note, "
                "study_verdict, study_probability) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    diagnosis.file,
                    str(file_path),
                    diagnosis.file_sha256,
                    study_id,
                    diagnosis.part,
                    diagnosis.part_confidence,
                    json.dumps(dict(diagnosis.part_probabilities)),
                    diagnosis.fracture_probability,
                    diagnosis.verdict.value,
                    diagnosis.model_version,
                    note,
                    None if study is None else study.verdict.value,
                    None if study is None else study.fracture_probability,
                ),
            )
        return int(cursor.lastrowid)

    def set_note(self, row_ids: list[int], note: str) -> None:
        """The note belongs to the study on screen: a note changed after Predict reaches its rows."""
        with self._connection:
            self._connection.executemany("UPDATE predictions SET note = ? WHERE id = ?", [(note, i) for i in row_ids])

    def rows(self, limit: int = 1000) -> list[HistoryRow]:
        cursor = self._connection.execute(
            "SELECT id, created_utc, file_name, file_path, file_sha256, study_id, part, part_confidence, "
            "part_probabilities, fracture_probability, verdict, model_version, note, study_verdict, "
            "study_probability FROM predictions ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            HistoryRow(*row[:8], json.loads(row[8]), *row[9:])  # type: ignore[arg-type]
            for row in cursor.fetchall()
        ]

    def export_csv(self, path: Path) -> int:
        """Write every row (no file paths: they can name patients) to CSV, atomically."""
        rows = self.rows(limit=1_000_000)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow([getattr(row, column) for column in CSV_COLUMNS])
        write_text_atomic(Path(path), buffer.getvalue())
        return len(rows)
