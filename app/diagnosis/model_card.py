"""Short, honest sentences about a model, read from the manifest (never typed by hand)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from app.diagnosis.manifest import ModelEntry, ModelManifest


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def interval_text(figures: dict, key: str, percent: bool = False) -> str:
    """The 95% interval to write after a figure, e.g. " (95% interval 0.61-0.80)"; empty without one."""
    bounds = figures.get(f"{key}_ci")
    if not bounds:
        return ""
    low, high = (_percent(b) for b in bounds) if percent else (f"{b:.2f}" for b in bounds)
    return f" (95% interval {low}-{high})"


class Confusion(NamedTuple):
    region: str  # the data's finer anatomy, e.g. wrist
    part: str  # the body part that region counts as (wrist: other)
    predicted: str
    count: int
    images: int


def largest_part_confusions(by_region: dict[str, dict], shown: int) -> list[Confusion]:
    """The body-part model's most frequent mistakes, by fine region, largest first."""
    errors = [
        Confusion(region, figures["part"], predicted, count, figures["images"])
        for region, figures in by_region.items()
        for predicted, count in figures["predicted"].items()
        if predicted != figures["part"] and count
    ]
    return sorted(errors, key=lambda error: (-error.count, error.region, error.predicted))[:shown]


def part_model_summary(manifest: ModelManifest) -> str:
    metrics = manifest.entries["body_part"].info.get("metrics", {})
    summary = (
        f"Body-part model: accuracy {_percent(metrics.get('accuracy'))}{interval_text(metrics, 'accuracy', True)} "
        f"on {metrics.get('images', 'n/a')} "
        f"held-out test images (elbow, hand, shoulder, other)."
    )
    for worst in largest_part_confusions(metrics.get("by_region", {}), shown=1):
        summary += (
            f" Most frequent mistake: {worst.region} films (counted as {worst.part}) read as {worst.predicted}, "
            f"{worst.count} of {worst.images}."
        )
    return summary


def fracture_model_summary(manifest: ModelManifest, part: str) -> str:
    entry = manifest.entries[f"fracture_{part}"]
    metrics = entry.info.get("metrics", {})
    rule_out = metrics.get("at_rule_out", {})
    rule_in = metrics.get("at_rule_in", {})
    auroc = metrics.get("auroc")
    return (
        f"{part.capitalize()} fracture model, measured on {metrics.get('images', 'n/a')} held-out test images: "
        f"AUROC {'n/a' if auroc is None else f'{auroc:.2f}'}{interval_text(metrics, 'auroc')}; "
        f"sensitivity {_percent(rule_out.get('sensitivity'))}{interval_text(rule_out, 'sensitivity', True)} at the "
        f"rule-out threshold {entry.thresholds.rule_out:.2f}; "
        f"specificity {_percent(rule_in.get('specificity'))}{interval_text(rule_in, 'specificity', True)} at the "
        "rule-in threshold "
        f"{entry.thresholds.rule_in:.2f}." + _withheld_note(entry)
    )


def _withheld_note(entry: ModelEntry) -> str:
    reason = entry.verdicts_withheld
    return "" if reason is None else f" {reason[0].upper()}{reason[1:]}."


def training_data_summary(manifest: ModelManifest) -> str:
    trained = manifest.entries["body_part"].info.get("trained_with", {})
    data = trained.get("data", {})
    sources = sorted({row["source"] for row in data.get("by_split_source_part_fractured", [])})
    size = f"{trained.get('input_size', '?')} px"
    return (
        f"{_starting_point(trained.get('init'))} at {size} "
        f"on {trained.get('train_images', 'n/a')} public radiographs ({', '.join(sources) or 'n/a'}); "
        "labels come from the public datasets, not from clinical review."
    )


def _starting_point(init: str | None) -> str:
    """How the weights started, in words (`--init none|imagenet|PATH`)."""
    if init in (None, "none"):
        return "Trained from scratch (no pretrained weights)"
    if init == "imagenet":
        return "Fine-tuned from ImageNet weights"
    return f"Fine-tuned from an earlier model ({Path(init).name})"
