"""PNG figures for the model card, drawn from measured data only."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from training.history import read_history


def roc_png(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(5, 5), dpi=100)
    for part, (labels, scores) in curves.items():
        if len(set(labels.tolist())) < 2:
            continue
        fpr, tpr, _ = roc_curve(labels, scores)
        axes.plot(fpr, tpr, label=f"{part} (AUROC {roc_auc_score(labels, scores):.3f}, n={len(labels)})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axes.set(xlabel="1 - specificity", ylabel="sensitivity", title="Fracture ROC, test split")
    axes.legend(loc="lower right", fontsize=8)
    _save(figure, path)


def _annotated_counts(axis: plt.Axes, counts: np.ndarray, rows: list[str], columns: list[str]) -> None:
    """Counts as a shaded grid with each number written in it. scikit-learn's
    ConfusionMatrixDisplay draws square matrices only; the verdict matrix is 2 x 3."""
    axis.imshow(counts, cmap="Blues")
    for (row, column), value in np.ndenumerate(counts):
        colour = "white" if value > counts.max() / 2 else "black"
        axis.text(column, row, str(value), ha="center", va="center", color=colour)
    axis.set_xticks(range(len(columns)), columns)
    axis.set_yticks(range(len(rows)), rows)


def confusion_matrix_png(matrix: dict, path: Path) -> None:
    names = list(matrix["rows_true_columns_predicted"])
    figure, axes = plt.subplots(figsize=(5, 4.5), dpi=100)
    _annotated_counts(axes, np.array(matrix["counts"]), names, names)
    axes.set(xlabel="predicted", ylabel="true", title="Body part, test split")
    _save(figure, path)


def verdict_matrix_png(matrices: dict[str, np.ndarray], path: Path) -> None:
    """Per part: true label (rows) against the three-way verdict (columns), test split."""
    figure, axes = plt.subplots(1, max(1, len(matrices)), figsize=(4.2 * max(1, len(matrices)), 3.4), dpi=100)
    for axis, (part, counts) in zip(np.atleast_1d(axes), matrices.items()):
        _annotated_counts(axis, counts, ["normal", "fractured"], ["normal", "uncertain", "fractured"])
        axis.set(xlabel="verdict", ylabel="true", title=f"{part} fracture, test split")
    _save(figure, path)


def training_curves_png(stages: list[tuple[str, Path]], path: Path) -> None:
    """Losses per epoch over every stage of a run, (label, history.csv) in order; a dotted
    line marks where a stage continued from the previous one's checkpoint."""
    rows: list[dict[str, str]] = []
    starts: list[tuple[int, str]] = []
    for label, history_csv in stages:
        starts.append((len(rows), label))
        rows.extend(read_history(history_csv))
    if not rows:
        return
    epochs = np.arange(1, len(rows) + 1)
    # Stages may differ in their losses: a body-part loss before 2026-11-29, a region loss since,
    # and a fracture-map loss only for models that have the map.
    panels = [("body part loss", ("region_loss", "part_loss")), ("fracture loss", ("fracture_loss",))]
    if any("fracture_map_loss" in r for r in rows):
        panels.append(("fracture map loss", ("fracture_map_loss",)))
    figure, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.5), dpi=100)
    for axis, (title, keys) in zip(axes, panels):
        for prefix, label in (("", "train"), ("val_", "validation")):
            axis.plot(epochs, [_first_value(r, [prefix + k for k in keys]) for r in rows], label=label)
        axis.set(xlabel="epoch", ylabel=title, title=title, yscale="log")
        for start, label in starts:
            axis.axvline(start + 0.5, color="grey", linestyle=":")
            axis.annotate(label, (start + 0.7, 0.97), xycoords=("data", "axes fraction"), va="top", fontsize=8)
        axis.legend(loc="best")
    _save(figure, path)


def _first_value(row: dict[str, str], keys: list[str]) -> float:
    return next((float(row[k]) for k in keys if row.get(k)), float("nan"))


def _save(figure: plt.Figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
