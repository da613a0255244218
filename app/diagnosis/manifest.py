"""`models/manifest.json`: which model files the app loads, and what is known about them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.atomic import write_text_atomic
from app.diagnosis.value import Thresholds
from app.errors import ModelFilesError
from app.xray.preprocess import PREPROCESSING_VERSION

MANIFEST_NAME = "manifest.json"
MODEL_NAMES = ("body_part", "fracture_elbow", "fracture_hand", "fracture_shoulder")
RESTORE_HINT = "restore the models folder from the release (git checkout -- models) or retrain with bonefrac-train"


# Chance: a fracture model gives verdicts only when the 95% interval of its validation AUROC
# lies wholly above it (decided on validation, never test), so noise on a hundred images
# cannot switch a part on.
CHANCE_AUROC = 0.50


@dataclass(frozen=True)
class ModelEntry:
    name: str
    file: str
    sha256: str
    input_size: int
    output: str  # "part" or "fracture"
    output_index: int | None
    class_names: tuple[str, ...]
    thresholds: Thresholds | None  # fracture models only
    min_confidence: float | None
    info: dict[str, Any]  # everything else: metrics, training data, ...
    # Fracture models: AUROC on the validation split and its 95% interval (None when not measured).
    validation_auroc: float | None = None
    validation_auroc_ci: tuple[float, float] | None = None

    @property
    def verdicts_withheld(self) -> str | None:
        """Why this fracture model gives no verdict, or None: a model that does not separate
        fractured from normal validation images better than chance beyond doubt, or whose skill
        was never measured, would show calls that look like findings while carrying none."""
        if self.output != "fracture":
            return None
        part = self.name.removeprefix("fracture_")
        if self.validation_auroc is None or self.validation_auroc_ci is None:
            return f"the {part} fracture model's skill was not measured on validation images, so it gives no verdict"
        low, high = self.validation_auroc_ci
        if low <= CHANCE_AUROC:
            return (
                f"the {part} fracture model could not be told apart from chance on validation images "
                f"(AUROC {self.validation_auroc:.2f}, 95% interval {low:.2f}-{high:.2f}), so it gives no verdict"
            )
        return None


@dataclass(frozen=True)
class ModelManifest:
    directory: Path
    version: str
    entries: dict[str, ModelEntry]
    raw: dict[str, Any]

    def path_of(self, entry: ModelEntry) -> Path:
        return self.directory / entry.file


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(directory: Path, verify: bool = True) -> ModelManifest:
    """Read and check the manifest; with `verify`, check every model file's sha256.
    Raises ModelFilesError naming the file that is wrong and how to restore it."""
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ModelFilesError(f"no model manifest at {manifest_path}; {RESTORE_HINT}")
    try:
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
        entries = {name: _entry(name, raw["models"][name]) for name in MODEL_NAMES}
        version = str(raw["model_version"])
        preprocessing = raw["preprocessing_version"]
    except OSError as error:
        raise ModelFilesError(f"the model manifest {manifest_path} cannot be read ({error.strerror})") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ModelFilesError(f"the model manifest {manifest_path} is damaged ({error}); {RESTORE_HINT}") from None
    if preprocessing != PREPROCESSING_VERSION:
        # The model would see images prepared otherwise than in training: wrong without a sign.
        raise ModelFilesError(
            f"the models in {directory} were trained on images prepared by preprocessing version {preprocessing}, "
            f"but this version of bonefrac prepares them with version {PREPROCESSING_VERSION}; "
            "install the bonefrac release that matches the models, or retrain them with bonefrac-train"
        )
    manifest = ModelManifest(directory=directory, version=version, entries=entries, raw=raw)
    if verify:
        actual: dict[str, str] = {}  # each file hashed once, every entry checked against it
        for entry in entries.values():
            if entry.file not in actual:
                actual[entry.file] = _hash_existing(manifest.path_of(entry))
            if actual[entry.file] != entry.sha256:
                raise ModelFilesError(
                    f"model file {entry.file} does not match the manifest entry {entry.name} "
                    f"(damaged or replaced); {RESTORE_HINT}"
                )
    return manifest


def _entry(name: str, data: dict[str, Any]) -> ModelEntry:
    if data["output"] == "fracture":
        # A fracture model is unusable without its column and both operating thresholds.
        if data.get("output_index") is None or not {"rule_out", "rule_in"} <= set(_mapping(data.get("thresholds"))):
            raise ValueError(f"{name} lacks its output_index or thresholds")
    elif data["output"] != "part":
        raise ValueError(f"{name} has an unknown output {data['output']!r}")
    known = {
        "file",
        "sha256",
        "input_size",
        "output",
        "output_index",
        "class_names",
        "thresholds",
        "min_confidence",
    }
    return ModelEntry(
        name=name,
        file=str(data["file"]),
        sha256=str(data["sha256"]),
        input_size=int(data["input_size"]),
        output=str(data["output"]),
        output_index=None if data.get("output_index") is None else int(data["output_index"]),
        class_names=tuple(data["class_names"]),
        thresholds=Thresholds.from_dict(data["thresholds"]) if data["output"] == "fracture" else None,
        min_confidence=None if data.get("min_confidence") is None else float(data["min_confidence"]),
        validation_auroc=_optional_float(_mapping(data.get("validation")).get("auroc")),
        validation_auroc_ci=_optional_interval(_mapping(data.get("validation")).get("auroc_ci")),
        info={k: v for k, v in data.items() if k not in known},
    )


def _hash_existing(path: Path) -> str:
    if not path.is_file():
        raise ModelFilesError(f"model file {path.name} is missing from {path.parent}; {RESTORE_HINT}")
    return sha256_of(path)


def write_manifest(directory: Path, raw: dict[str, Any]) -> None:
    write_text_atomic(directory / MANIFEST_NAME, json.dumps(raw, indent=2) + "\n")


def _optional_float(value: Any) -> float | None:
    """A number from the manifest, or None; anything else is a damaged manifest (ValueError)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, found {value!r}")
    return float(value)


def _optional_interval(value: Any) -> tuple[float, float] | None:
    """A [low, high] pair of numbers from the manifest, or None; anything else is damage."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"expected an interval [low, high], found {value!r}")
    low, high = (_optional_float(v) for v in value)
    if low is None or high is None:
        raise ValueError(f"expected an interval [low, high], found {value!r}")
    return low, high


def _mapping(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, found {value!r}")
    return value
