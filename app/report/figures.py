"""A model's AUROC in words a clinician can use, with its 95% interval where the manifest has one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.diagnosis.manifest import ModelManifest
from app.diagnosis.model_card import _interval  # one wording of an interval, in the model card and here

CHANCE = 0.5
# (lowest AUROC, what a verdict from such a model is worth), best first.
_SKILL_WORDS = (
    (0.80, "good separation of fractured from normal images; still not a diagnosis"),
    (0.70, "moderate separation of fractured from normal images; read the image yourself"),
    (0.60, "weak separation of fractured from normal images; treat this verdict with caution"),
)
_NEAR_CHANCE = "close to chance (0.5); this verdict carries little information"


def auroc_interval(block: Mapping[str, Any]) -> tuple[float, float] | None:
    """The 95% interval stored as `auroc_ci: [low, high]` next to `auroc`, or None."""
    interval = block.get("auroc_ci")
    if not isinstance(interval, list | tuple) or len(interval) != 2:
        return None
    return float(interval[0]), float(interval[1])


def auroc_text(block: Mapping[str, Any]) -> str:
    """'0.57 (95% interval 0.45-0.69)', or '0.57' where the manifest has no interval, or 'n/a'."""
    auroc = block.get("auroc")
    return "n/a" if auroc is None else f"{auroc:.2f}{_interval(dict(block), 'auroc')}"


def skill_words(block: Mapping[str, Any]) -> str:
    """What the AUROC means for a verdict. Judged on the interval's lower end when there is one:
    a model is only as good as the worst its measurement allows."""
    auroc = block.get("auroc")
    if auroc is None:
        return "its skill was not measured; this verdict carries no known information"
    interval = auroc_interval(block)
    if interval is not None and interval[0] <= CHANCE:
        return "its interval includes chance (0.5); this verdict carries little information"
    judged = interval[0] if interval is not None else float(auroc)
    return next((words for floor, words in _SKILL_WORDS if judged >= floor), _NEAR_CHANCE)


def skill_text(manifest: ModelManifest, part: str) -> str:
    """One sentence for the verdict of `part`'s fracture model, from its held-out test figures."""
    entry = manifest.entries.get(f"fracture_{part}")
    if entry is None:
        return ""
    metrics = entry.info.get("metrics", {})
    return f"{part.capitalize()} model on held-out test images: AUROC {auroc_text(metrics)}: {skill_words(metrics)}."
