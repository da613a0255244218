"""`Diagnosis` and `StudyDiagnosis`: plain values that the GUI, the report, the history and
the CLI all render. None of them recomputes anything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

SUPPORTED_PARTS = ("elbow", "hand", "shoulder")
NOTICE = "Decision support, not a diagnosis. A clinician must review every image."


class Verdict(StrEnum):
    FRACTURED = "fractured"
    NORMAL = "normal"
    UNCERTAIN = "uncertain"
    UNSUPPORTED = "unsupported"


# How suspicious a verdict is, most first: sorting a worklist, choosing the verdict of a study of
# several parts, the order of a study's views.
SUSPICION = {Verdict.FRACTURED: 3, Verdict.UNCERTAIN: 2, Verdict.NORMAL: 1, Verdict.UNSUPPORTED: 0}


FRACTURE_MAP = "fracture map"
ACTIVATION_MAP = "activation map"


@dataclass(frozen=True)
class Thresholds:
    """A fracture model's two operating points, chosen on validation images. Below `rule_out`
    (sensitivity >= 90% there): normal; at or above `rule_in` (specificity >= 90%): fractured;
    between them: uncertain."""

    rule_out: float
    rule_in: float

    def verdict(self, probability: float) -> Verdict:
        if probability >= self.rule_in:
            return Verdict.FRACTURED
        if probability < self.rule_out:
            return Verdict.NORMAL
        return Verdict.UNCERTAIN

    def to_dict(self) -> dict[str, float]:
        return {"rule_out": self.rule_out, "rule_in": self.rule_in}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Thresholds:
        return cls(rule_out=float(values["rule_out"]), rule_in=float(values["rule_in"]))


@dataclass(frozen=True, eq=False)
class Diagnosis:
    file: str  # the source file's name (no folders: paths can hold patient names)
    part: str  # most likely body part: elbow | hand | shoulder | other
    part_probabilities: Mapping[str, float]
    verdict: Verdict
    fracture_probability: float | None  # None when unsupported
    thresholds: Thresholds | None  # the routed model's operating points
    unsupported_reason: str | None
    model_version: str
    timings_ms: Mapping[str, float]
    file_sha256: str = ""
    # Raw output of every part's fracture head, so a study can be aggregated without rerunning.
    head_probabilities: Mapping[str, float] = field(default_factory=dict)
    # Over the letterboxed square model input, values in [0, 1]: with a FRACTURE_MAP each cell's
    # fracture probability; with an ACTIVATION_MAP (older models) the CAM scaled to its own range.
    heatmap: np.ndarray | None = field(default=None, repr=False)
    heatmap_kind: str = ""
    notes: tuple[str, ...] = ()
    out_of_scope: bool = False  # refused before the model: not a radiograph (photo, blank)

    @property
    def part_confidence(self) -> float:
        return float(self.part_probabilities[self.part])

    @property
    def supported(self) -> bool:
        return self.verdict is not Verdict.UNSUPPORTED

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "part_confidence": round(self.part_confidence, 4),
            **_verdict_fields(self),
            "file_sha256": self.file_sha256,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
            "notes": list(self.notes),
        }


@dataclass(frozen=True, eq=False)
class StudyDiagnosis:
    """Several views of one study: each view's diagnosis and one study-level verdict from the
    mean fracture probability over the views (as the MURA paper does).

    When the views are confidently of different body parts (`mixed_parts`, e.g. a folder of
    unrelated exports), `part` and the verdict are those of its most suspicious part's views,
    and `part_probabilities` their mean."""

    views: tuple[Diagnosis, ...]
    part: str
    part_probabilities: Mapping[str, float]
    verdict: Verdict
    fracture_probability: float | None
    thresholds: Thresholds | None
    unsupported_reason: str | None
    model_version: str
    mixed_parts: tuple[str, ...] = ()  # the parts, sorted, when the views are of several

    def to_dict(self) -> dict[str, Any]:
        files = [view.file for view in self.views]
        mixed = list(self.mixed_parts)
        return {"views": len(self.views), "files": files, **_verdict_fields(self), "mixed_parts": mixed}


def _verdict_fields(result: Diagnosis | StudyDiagnosis) -> dict[str, Any]:
    """The fields an image and a study share, as JSON-ready values."""
    probability = result.fracture_probability
    return {
        "part": result.part,
        "part_probabilities": {k: round(v, 4) for k, v in result.part_probabilities.items()},
        "fracture_probability": None if probability is None else round(probability, 4),
        "verdict": result.verdict.value,
        "unsupported_reason": result.unsupported_reason,
        "thresholds": None if result.thresholds is None else _thresholds_json(result.thresholds),
        "model_version": result.model_version,
    }


def _thresholds_json(thresholds: Thresholds) -> dict[str, float]:
    """rule_out / rule_in, and for one release their former names (sensitive / specific), which
    scripts reading `bonefrac predict --json` may still use."""
    return {**thresholds.to_dict(), "sensitive": thresholds.rule_out, "specific": thresholds.rule_in}
