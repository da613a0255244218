"""The words a user reads about a result, in one place: the window, the reports and the CLI
say the same thing the same way. Values come from the engine; nothing is computed here."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from app.diagnosis.manifest import CHANCE_AUROC, ModelManifest
from app.diagnosis.model_card import interval_text  # one wording of an interval, in the model card and here
from app.diagnosis.value import FRACTURE_MAP, Diagnosis, StudyDiagnosis, Thresholds, Verdict

VERDICT_LABELS = {
    Verdict.FRACTURED: "Fractured",
    Verdict.NORMAL: "Normal",
    Verdict.UNCERTAIN: "Uncertain",
    Verdict.UNSUPPORTED: "Not supported",
}


def verdict_line(verdict: Verdict, probability: float | None, reason: str | None) -> str:
    if verdict is Verdict.UNSUPPORTED:
        return f"Verdict: {VERDICT_LABELS[verdict]} - {reason}"
    return f"Verdict: {VERDICT_LABELS[verdict]} (fracture probability {probability:.2f})"


def threshold_text(thresholds: Thresholds | None) -> str:
    """The verdict's rule in words; empty without thresholds (a result with no verdict)."""
    if thresholds is None:
        return ""
    return (
        f"Normal below {thresholds.rule_out:.2f} (rule-out), fractured from {thresholds.rule_in:.2f} (rule-in), "
        "uncertain between."
    )


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
    return "n/a" if auroc is None else f"{auroc:.2f}{interval_text(dict(block), 'auroc')}"


def skill_words(block: Mapping[str, Any]) -> str:
    """What the AUROC means for a verdict. Judged on the interval's lower end when there is one:
    a model is only as good as the worst its measurement allows."""
    auroc = block.get("auroc")
    if auroc is None:
        return "its skill was not measured; this verdict carries no known information"
    interval = auroc_interval(block)
    if interval is not None and interval[0] <= CHANCE_AUROC:
        return "its interval includes chance (0.5); this verdict carries little information"
    judged = interval[0] if interval is not None else float(auroc)
    words = next((words for floor, words in _SKILL_WORDS if judged >= floor), None)
    if words is not None:
        return words
    if interval is not None:  # above chance, but not by much at worst
        low = interval[0]
        return f"its interval reaches down to {low:.2f}, near chance (0.5); treat this verdict with great caution"
    return _NEAR_CHANCE


def skill_text(manifest: ModelManifest, part: str) -> str:
    """One sentence for the verdict of `part`'s fracture model, from its held-out test figures."""
    entry = manifest.entries.get(f"fracture_{part}")
    if entry is None:
        return ""
    metrics = entry.info.get("metrics", {})
    return f"{part.capitalize()} model on held-out test images: AUROC {auroc_text(metrics)}: {skill_words(metrics)}."


def heatmap_hint(diagnosis: Diagnosis | None) -> str:
    """The legend's line while no heatmap is drawn: how to show one, or why there is none."""
    if diagnosis is None:
        return "Heatmap: after Predict, switch on Heatmap to see where the fracture model found its evidence."
    if not diagnosis.supported:
        return "No heatmap: this image has no fracture verdict."
    if diagnosis.heatmap is None:
        return "No heatmap with this result."
    return "Heatmap off: switch on Heatmap to see where the fracture model found its evidence."


def heatmap_legend(kind: str) -> tuple[str, str, str]:
    """(low end, high end, sentence) for the heatmap's colour ramp, by the kind of map shown."""
    if kind == FRACTURE_MAP:
        return (
            "0",
            "1",
            # The warning first: a narrow window cuts the end of the line, never the warning.
            "Not a fracture outline: the fracture probability of each region, from the model's fracture map "
            "(learnt from fracture boxes).",
        )
    return "weak", "strong", "Not a fracture outline: where the fracture model found its evidence (relative)."


def outlines_caption(thresholds: Thresholds) -> str:
    """The caption of the picture with the suspicious regions outlined."""
    return f"Suspicious regions (fracture map at or above the rule-in threshold {thresholds.rule_in:.2f})"


def outlines_text(diagnosis: Diagnosis | None, outlined: bool) -> str:
    """What the Outlines toggle can show for this result, or why it shows nothing ("" before a
    result). `outlined`: whether any cell of the map reaches rule-in (the engine says)."""
    if diagnosis is None:
        return ""
    if not diagnosis.supported:
        return "Outlines: none, this image has no verdict."
    if diagnosis.heatmap is None or diagnosis.thresholds is None:
        return "Outlines: none, this result has no fracture map."
    if diagnosis.heatmap_kind != FRACTURE_MAP:
        return (
            "Outlines: none, this model's heatmap is relative (an activation map) and gives no probability "
            "per region to hold against the rule-in threshold."
        )
    rule_in = diagnosis.thresholds.rule_in
    if not outlined:
        return f"Outlines: no region of the fracture map reaches the rule-in threshold {rule_in:.2f}."
    text = f"Outlines: regions where the fracture map is at or above the rule-in threshold {rule_in:.2f}."
    if diagnosis.fracture_probability is not None and diagnosis.fracture_probability < rule_in:
        # Seen beside an "uncertain" verdict: say why a region can pass where the image does not.
        text += " The image's probability pools all regions, so it can stay below its most suspicious one's."
    return text


def confidence_text(probability: float) -> str:
    """A confidence as a whole percent, rounded down: the same number the "body part is unclear"
    decision is worded with (89.9% reads 89%, never 90% beside "below the 90% needed")."""
    return f"{math.floor(probability * 100)}%"


def mixed_study_words(study: StudyDiagnosis) -> str:
    """Why a study of views of different body parts has the verdict it has ("" for a study of
    one part): it is as suspicious as its most suspicious part's views."""
    if not study.mixed_parts:
        return ""
    if study.unsupported_reason is not None:
        return study.unsupported_reason  # the engine's own words for it
    parts = ", ".join(study.mixed_parts)
    return f"views of different body parts ({parts}): verdict from the {study.part} views, the most suspicious"


def study_views_text(study: StudyDiagnosis) -> str:
    """Which views a study of one part takes its verdict from, when not all of them: those whose
    body part is clear ("" when all, when none has a verdict, and for views of several parts,
    which `mixed_study_words` words)."""
    if study.unsupported_reason is not None or study.mixed_parts:
        return ""
    used = sum(view.supported and view.part == study.part for view in study.views)
    if used == len(study.views):
        return ""
    return f"verdict from {used} of its {len(study.views)} views; the others have none of their own"


def study_part_text(study: StudyDiagnosis) -> str:
    """The body part of a study as a table cell: its part, or "mixed (elbow, hand)"."""
    return f"mixed ({', '.join(study.mixed_parts)})" if study.mixed_parts else study.part
