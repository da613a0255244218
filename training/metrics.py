"""Figures the way the field reports them: sensitivity, specificity, AUROC, Cohen's kappa,
image level and study level, and operating thresholds chosen on validation data."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix, roc_auc_score, roc_curve

SENSITIVE_TARGET = 0.90  # the rule-out point: at most 1 fracture in 10 called normal
SPECIFIC_TARGET = 0.90  # the rule-in point: at most 1 normal in 10 called fractured


def auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    return float(roc_auc_score(labels, scores)) if len(set(labels.tolist())) == 2 else None


def rounded_auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """AUROC as the manifest stores it (4 decimals); None when one class is missing."""
    return _round(auroc(labels, scores))


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float | int | None]:
    if len(labels) == 0:
        return {"threshold": round(float(threshold), 4)}
    predicted = (scores >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    sensitivity = tp / (tp + fn) if tp + fn else None
    specificity = tn / (tn + fp) if tn + fp else None
    precision = tp / (tp + fp) if tp + fp else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    kappa = cohen_kappa_score(labels, predicted) if len(set(labels.tolist()) | set(predicted.tolist())) > 1 else None
    return {
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


def operating_thresholds(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Two thresholds from validation data: `sensitive` (largest threshold whose sensitivity
    is still >= SENSITIVE_TARGET) and `specific` (smallest with specificity >= SPECIFIC_TARGET).
    Scores between them are "uncertain". If the model is good enough that they cross, the
    uncertain band is empty and both sit at their midpoint. Without both classes there is
    nothing to choose from, and both fall back to 0.5."""
    if len(set(labels.tolist())) < 2:
        return {"sensitive": 0.5, "specific": 0.5}
    false_positive_rate, true_positive_rate, thresholds = roc_curve(labels, scores)
    thresholds = np.clip(thresholds, 0.0, 1.0)
    sensitive = float(thresholds[np.argmax(true_positive_rate >= SENSITIVE_TARGET)])
    specific_ok = (1.0 - false_positive_rate) >= SPECIFIC_TARGET
    specific = float(thresholds[np.nonzero(specific_ok)[0][-1]]) if specific_ok.any() else 1.0
    if sensitive > specific:
        sensitive = specific = (sensitive + specific) / 2.0
    # Round outwards, so the stored thresholds still meet their targets on validation data.
    return {"sensitive": math.floor(sensitive * 1e4) / 1e4, "specific": math.ceil(specific * 1e4) / 1e4}


def verdict_counts(scores: np.ndarray, thresholds: dict[str, float]) -> dict[str, int]:
    fractured = scores >= thresholds["specific"]
    normal = scores < thresholds["sensitive"]
    return {
        "fractured": int(fractured.sum()),
        "normal": int(normal.sum()),
        "uncertain": int((~fractured & ~normal).sum()),
    }


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


def validation_figures(labels: np.ndarray, scores: np.ndarray, sources: list[str]) -> dict:
    """What runs are compared on (never the test split): AUROC overall and per source, since a
    model that separates the sources rather than the fractures shows up as a gap between them."""
    return {
        "images": len(labels),
        "auroc": rounded_auroc(labels, scores),
        "auroc_per_source": {
            source: rounded_auroc(labels[mask], scores[mask]) for source, mask in source_masks(sources).items()
        },
    }


def fracture_report(
    labels: np.ndarray, scores: np.ndarray, thresholds: dict[str, float], groups: list[str], sources: list[str]
) -> dict:
    """Everything we publish about one fracture model on one split."""
    study_labels, study_scores = study_level(groups, labels, scores)
    per_source = {}
    for source, mask in source_masks(sources).items():
        per_source[source] = {
            "images": int(mask.sum()),
            "fractured": int(labels[mask].sum()),
            "auroc": rounded_auroc(labels[mask], scores[mask]),
            "at_sensitive": binary_metrics(labels[mask], scores[mask], thresholds["sensitive"]),
        }
    return {
        "images": len(labels),
        "fractured": int(labels.sum()),
        "auroc": rounded_auroc(labels, scores),
        "at_sensitive": binary_metrics(labels, scores, thresholds["sensitive"]),
        "at_specific": binary_metrics(labels, scores, thresholds["specific"]),
        "verdicts": verdict_counts(scores, thresholds),
        "study": {
            "studies": len(study_labels),
            "auroc": rounded_auroc(study_labels, study_scores),
            "at_sensitive": binary_metrics(study_labels, study_scores, thresholds["sensitive"]),
            "at_specific": binary_metrics(study_labels, study_scores, thresholds["specific"]),
        },
        "per_source": per_source,
    }


def part_report(true_parts: list[str], probabilities: np.ndarray, class_names: tuple[str, ...]) -> dict:
    true_index = np.array([class_names.index(p) for p in true_parts])
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(true_index, predicted, labels=list(range(len(class_names))))
    return {
        "images": len(true_index),
        "accuracy": _round(float((predicted == true_index).mean())),
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
