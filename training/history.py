"""A run's history.csv: a row per finished epoch, as Keras's CSVLogger appends them."""

from __future__ import annotations

import csv
from pathlib import Path


def read_history(path: Path) -> list[dict[str, str]]:
    """The rows, one per epoch, in epoch order ([] when there is no readable file).

    The row of an epoch is written before its checkpoint (see training.train): a run stopped
    between the two trains that epoch again on resume and appends a second row for it, and the
    later row is the one that counts. (The other order would lose the row for good.)"""
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error):
        return []
    try:
        by_epoch = {int(row["epoch"]): row for row in rows}
    except (KeyError, TypeError, ValueError):
        return rows  # not Keras's layout: taken as it is
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def val_losses(path: Path) -> list[float]:
    """Validation loss per epoch, for the epochs that have one."""
    losses = []
    for row in read_history(path):
        try:
            losses.append(float(row["val_loss"]))
        except (KeyError, TypeError, ValueError):
            continue
    return losses
