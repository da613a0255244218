"""Figures the way the field reports them: sensitivity, specificity, AUROC, Cohen's kappa,
image level and study level, and operating thresholds chosen on validation data."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix, roc_auc_score, roc_curve

from app.diagnosis.value import Thresholds, Verdict

BOOTSTRAP_REPLICATES = 1000
RULE_OUT_SENSITIVITY = 0.90  # at most 1 fracture in 10 called normal
RULE_IN_SPECIFICITY = 0.90  # at most 1 normal in 10 called fractured


def auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    return float(roc_auc_score(labels, scores)) if len(set(labels.tolist())) == 2 else None


def rounded_auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """AUROC as the manifest stores it (4 decimals); None when one class is missing."""
    return _round(auroc(labels, scores))


def bootstrap_ci(
    statistic: Callable[..., float | None],
    groups: Sequence[str],
    *arrays: np.ndarray,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = 0,
) -> list[float] | None:
    """95% percentile interval of `statistic(*arrays)`, resampling whole groups (a patient, or a
    picture and its copies) with replacement, since images of one group are not independent.
    None when fewer than half the replicates give a value (e.g. one class almost absent)."""
    by_group: dict[str, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        by_group[group].append(index)
    members = [np.array(indices) for indices in by_group.values()]
    if len(members) < 2:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(replicates):
        chosen = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        value = statistic(*(array[chosen] for array in arrays))
        if value is not None:
            values.append(value)
    if len(values) < replicates / 2:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def auroc_ci(labels: np.ndarray, scores: np.ndarray, groups: Sequence[str]) -> list[float] | None:
    return bootstrap_ci(auroc, groups, labels, scores)


def _rate(labels: np.ndarray, predicted: np.ndarray, positive: int) -> float | None:
    """Sensitivity (positive=1) or specificity (positive=0) of 0/1 calls."""
    rows = labels == positive
    return float((predicted[rows] == positive).mean()) if rows.any() else None


def binary_metrics(
    labels: np.ndarray, scores: np.ndarray, threshold: float, groups: Sequence[str] | None = None
) -> dict[str, Any]:
    """Figures of the calls `score >= threshold`; with `groups`, 95% intervals of sensitivity,
    specificity and accuracy too."""
    if len(labels) == 0:
        return {"threshold": round(float(threshold), 4)}
    predicted = (scores >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    sensitivity = tp / (tp + fn) if tp + fn else None
    specificity = tn / (tn + fp) if tn + fp else None
    precision = tp / (tp + fp) if tp + fp else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    kappa = cohen_kappa_score(labels, predicted) if len(set(labels.tolist()) | set(predicted.tolist())) > 1 else None
    intervals = {}
    if groups is not None:
        intervals = {
            "sensitivity_ci": bootstrap_ci(lambda y, p: _rate(y, p, 1), groups, labels, predicted),
            "specificity_ci": bootstrap_ci(lambda y, p: _rate(y, p, 0), groups, labels, predicted),
            "accuracy_ci": bootstrap_ci(lambda y, p: float((y == p).mean()), groups, labels, predicted),
        }
    return {
        **intervals,
        "threshold": round(float(threshold), 4),
        "accuracy": _round((tp + tn) / len(labels)),
        "sensitivity": _round(sensitivity),
        "specificity": _round(specificity),
        "precision": _round(precision),
        "f1": _round(f1),
        "cohen_kappa": _round(kappa),
        "tp": int(tp),
        "fp": int(fp),
        "tn": int(tn),
        "fn": int(fn),
    }


def operating_thresholds(labels: np.ndarray, scores: np.ndarray) -> Thresholds:
    """Two thresholds from validation data: rule-out (largest threshold whose sensitivity is
    still >= RULE_OUT_SENSITIVITY) and rule-in (smallest with specificity >= RULE_IN_SPECIFICITY).
    Scores between them are "uncertain". If the model is good enough that they cross, the
    uncertain band is empty and both sit at their midpoint. Without both classes there is
    nothing to choose from, and both fall back to 0.5."""
    if len(set(labels.tolist())) < 2:
        return Thresholds(rule_out=0.5, rule_in=0.5)
    false_positive_rate, true_positive_rate, thresholds = roc_curve(labels, scores)
    thresholds = np.clip(thresholds, 0.0, 1.0)
    rule_out = float(thresholds[np.argmax(true_positive_rate >= RULE_OUT_SENSITIVITY)])
    specific_enough = (1.0 - false_positive_rate) >= RULE_IN_SPECIFICITY
    rule_in = float(thresholds[np.nonzero(specific_enough)[0][-1]]) if specific_enough.any() else 1.0
    if rule_out > rule_in:
        rule_out = rule_in = (rule_out + rule_in) / 2.0
    # Round outwards, so the stored thresholds still meet their targets on validation data.
    return Thresholds(rule_out=math.floor(rule_out * 1e4) / 1e4, rule_in=math.ceil(rule_in * 1e4) / 1e4)


def verdicts(scores: np.ndarray, thresholds: Thresholds) -> list[Verdict]:
    return [thresholds.verdict(float(score)) for score in scores]


def verdict_counts(scores: np.ndarray, thresholds: Thresholds) -> dict[str, int]:
    called = verdicts(scores, thresholds)
    return {verdict.value: called.count(verdict) for verdict in (Verdict.FRACTURED, Verdict.NORMAL, Verdict.UNCERTAIN)}


def study_level(groups: list[str], labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean probability over the views of a study (as in the MURA paper). A study is
    fractured when any of its images is labelled fractured."""
    by_group: dict[str, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        by_group[group].append(index)
    study_labels = np.array([labels[idx].max() for idx in by_group.values()])
    study_scores = np.array([scores[idx].mean() for idx in by_group.values()])
    return study_labels, study_scores


def source_masks(sources: list[str]) -> dict[str, np.ndarray]:
    return {source: np.array([s == source for s in sources]) for source in sorted(set(sources))}


def validation_figures(labels: np.ndarray, scores: np.ndarray, sources: list[str], groups: list[str]) -> dict:
    """What runs are compared on (never the test split): AUROC with its 95% interval, overall
    and per source, since a model that separates the sources rather than the fractures shows
    up as a gap between them."""
    return {
        "images": len(labels),
        "auroc": rounded_auroc(labels, scores),
        "auroc_ci": auroc_ci(labels, scores, groups),
        "auroc_per_source": {
            source: rounded_auroc(labels[mask], scores[mask]) for source, mask in source_masks(sources).items()
        },
    }


def fracture_report(
    labels: np.ndarray, scores: np.ndarray, thresholds: Thresholds, groups: list[str], sources: list[str]
) -> dict:
    """Everything we publish about one fracture model on one split."""
    study_labels, study_scores = study_level(groups, labels, scores)
    per_source = {}
    for source, mask in source_masks(sources).items():
        per_source[source] = {
            "images": int(mask.sum()),
            "fractured": int(labels[mask].sum()),
            "auroc": rounded_auroc(labels[mask], scores[mask]),
            "auroc_ci": auroc_ci(labels[mask], scores[mask], [g for g, m in zip(groups, mask) if m]),
            "at_rule_out": binary_metrics(labels[mask], scores[mask], thresholds.rule_out),
        }
    studies = [str(i) for i in range(len(study_labels))]  # each study resamples as a whole
    return {
        "images": len(labels),
        "fractured": int(labels.sum()),
        "auroc": rounded_auroc(labels, scores),
        "auroc_ci": auroc_ci(labels, scores, groups),
        "at_rule_out": binary_metrics(labels, scores, thresholds.rule_out, groups),
        "at_rule_in": binary_metrics(labels, scores, thresholds.rule_in, groups),
        "verdicts": verdict_counts(scores, thresholds),
        "study": {
            "studies": len(study_labels),
            "auroc": rounded_auroc(study_labels, study_scores),
            "auroc_ci": auroc_ci(study_labels, study_scores, studies),
            "at_rule_out": binary_metrics(study_labels, study_scores, thresholds.rule_out, studies),
            "at_rule_in": binary_metrics(study_labels, study_scores, thresholds.rule_in, studies),
        },
        "per_source": per_source,
    }


def pointing_game(
    maps: np.ndarray, boxes: list[list[tuple[float, float, float, float]]], groups: list[str]
) -> dict[str, Any]:
    """Localisation on fractured images with boxes: the share whose most suspicious map cell
    overlaps a fracture box. `maps` (N, G, G); boxes (left, top, right, bottom) relative to the
    same square the map covers.

    A hit is the peak *cell* touching a box, the same rule that makes a cell positive in
    training: most boxes are smaller than one cell (1/12 of the side at 192 px), so asking for
    the cell's centre inside the box would miss a perfect map. `chance` is the rate a randomly
    chosen cell would reach, so the figure can be read against it; `centre_rate` keeps the
    stricter centre-in-box rule for comparison."""
    hits, centre_hits, chances = [], [], []
    for cells, image_boxes in zip(maps, boxes):
        touching = _cells_touching(cells.shape[0], image_boxes)
        row, column = np.unravel_index(int(np.argmax(cells)), cells.shape)
        y, x = (row + 0.5) / cells.shape[0], (column + 0.5) / cells.shape[1]
        peaked = float(cells.max()) > float(cells.min())  # a flat map points nowhere: a miss
        hits.append(peaked and bool(touching[row, column]))
        centre_hits.append(
            peaked and any(left <= x <= right and top <= y <= bottom for left, top, right, bottom in image_boxes)
        )
        chances.append(float(touching.mean()))
    hit = np.array(hits, dtype=float)
    return {
        "images": len(hits),
        "hits": int(hit.sum()),
        "rate": _round(float(hit.mean())) if hits else None,
        "rate_ci": bootstrap_ci(lambda h: float(h.mean()), groups, hit) if hits else None,
        "chance": _round(float(np.mean(chances))) if hits else None,
        "centre_rate": _round(float(np.mean(centre_hits))) if hits else None,
    }


def _cells_touching(grid: int, boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
    """(grid, grid) bool: the cells that share some area with a box."""
    edges = np.arange(grid) / grid
    touching = np.zeros((grid, grid), dtype=bool)
    for left, top, right, bottom in boxes:
        # As training's masks do, a box of no width or height still marks the cell it is in.
        right, bottom = max(right, left + 1e-6), max(bottom, top + 1e-6)
        rows = (edges < bottom) & (edges + 1 / grid > top)
        columns = (edges < right) & (edges + 1 / grid > left)
        touching |= rows[:, np.newaxis] & columns[np.newaxis, :]
    return touching


def part_report(
    true_parts: list[str], probabilities: np.ndarray, class_names: tuple[str, ...], groups: list[str]
) -> dict:
    true_index = np.array([class_names.index(p) for p in true_parts])
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(true_index, predicted, labels=list(range(len(class_names))))
    return {
        "images": len(true_index),
        "accuracy": _round(float((predicted == true_index).mean())),
        "accuracy_ci": bootstrap_ci(lambda t, p: float((t == p).mean()), groups, true_index, predicted),
        "cohen_kappa": _round(float(cohen_kappa_score(true_index, predicted))),
        "confusion_matrix": {"rows_true_columns_predicted": list(class_names), "counts": matrix.tolist()},
    }


def part_by_region(
    true_parts: list[str], regions: list[str], probabilities: np.ndarray, class_names: tuple[str, ...]
) -> dict[str, dict]:
    """Body-part predictions per fine region: shows which neighbours the errors come from
    (a wrist film, labelled "other", shows most of the hand)."""
    predicted = [class_names[i] for i in probabilities.argmax(axis=1)]
    report: dict[str, dict] = {}
    for region in sorted(set(regions)):
        rows = [i for i, r in enumerate(regions) if r == region]
        counts = {name: sum(predicted[i] == name for i in rows) for name in class_names}
        report[region] = {
            "part": true_parts[rows[0]],
            "images": len(rows),
            "accuracy": _round(np.mean([predicted[i] == true_parts[i] for i in rows])),
            "predicted": counts,
        }
    return report


def min_confidence_for_accuracy(
    true_parts: list[str], probabilities: np.ndarray, class_names: tuple[str, ...], target: float = 0.95
) -> float:
    """Lowest part-confidence cut whose accepted validation images reach `target` accuracy
    (bounded to 0.4..0.9): below it the app says "not supported" rather than guess."""
    true_index = np.array([class_names.index(p) for p in true_parts])
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == true_index
    for cut in np.round(np.arange(0.40, 0.90, 0.01), 2):
        accepted = confidence >= cut
        if accepted.any() and correct[accepted].mean() >= target:
            return round(float(cut), 2)
    return 0.90


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)
