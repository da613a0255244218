"""A run's history.csv when a run was stopped between an epoch's history row and its checkpoint:
the epoch runs again on resume and its row is written twice; it must count once, as its later row."""

from __future__ import annotations

from pathlib import Path

import keras

from training.cli import _best_epoch
from training.history import read_history, val_losses
from training.recipe import _epochs_in_history
from training.train import ResumableEarlyStopping, WallClock, epoch_end_callbacks

HEADER = "epoch,loss,val_loss\n"


def _history(run_dir: Path, rows: str) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "history.csv"
    path.write_text(HEADER + rows, encoding="utf-8")
    return path


def test_an_epoch_written_twice_counts_once_as_its_later_row(tmp_path):
    # Epoch 1 finished (row written), the run stopped before its checkpoint, and resuming ran it again.
    path = _history(tmp_path / "run", "0,1.0,0.9\n1,0.8,0.85\n1,0.7,0.8\n2,0.6,0.82\n")
    rows = read_history(path)
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert val_losses(path) == [0.9, 0.8, 0.82]
    assert _epochs_in_history(tmp_path / "run") == 3
    assert _best_epoch(path) == "best epoch 2 of 3: validation loss 0.8000"


def test_early_stopping_resumes_counting_from_the_deduplicated_history(tmp_path):
    path = _history(tmp_path / "run", "0,1.0,0.9\n1,0.8,0.7\n1,0.8,0.7\n2,0.6,0.75\n")
    stopping = ResumableEarlyStopping(path, patience=3)
    stopping.on_train_begin()
    assert (stopping.best, stopping.best_epoch, stopping.wait) == (0.7, 1, 1)


def test_a_missing_or_foreign_history_reads_as_it_is(tmp_path):
    assert read_history(tmp_path / "none.csv") == []
    path = tmp_path / "other.csv"
    path.write_text("loss,val_loss\n1.0,0.9\n0.8,0.7\n", encoding="utf-8")
    assert val_losses(path) == [0.9, 0.7]


def test_the_history_row_is_written_before_the_checkpoint(tmp_path):
    """The order that makes a stop between the two repeat a row rather than lose one."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    history = run_dir / "history.csv"
    callbacks = epoch_end_callbacks(
        run_dir, WallClock(run_dir / "wallclock.json"), ResumableEarlyStopping(history, 3), None
    )
    kinds = [type(callback) for callback in callbacks]
    assert kinds.index(keras.callbacks.CSVLogger) < kinds.index(keras.callbacks.BackupAndRestore)
