"""Put a trained model into the models folder with its measured figures.

Thresholds and the part-confidence cut are chosen on the validation split; every figure
in the manifest is measured on the test split, which is used for nothing else.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
from collections import Counter
from pathlib import Path
from typing import Any

import keras
import numpy as np

from app.diagnosis.manifest import MANIFEST_NAME, MODEL_NAMES, load_manifest, sha256_of, write_manifest
from app.diagnosis.value import NOTICE, Thresholds, Verdict
from app.machine import describe_machine
from app.xray.preprocess import PREPROCESSING_VERSION
from training import figures
from training.card import REPO, update_readme
from training.data import Sample, deterministic_subset, load_pixels
from training.metrics import (
    fracture_report,
    min_confidence_for_accuracy,
    operating_thresholds,
    part_by_region,
    part_report,
    pointing_game,
    validation_figures,
    verdicts,
)
from training.model import FRACTURE_HEADS, PART_NAMES, SUPPORTED_PARTS, average_with, blend_with_any_head
from training.targets import placeable, square_boxes
from training.train import keras_verbosity


def file_name_for(task: str, part: str | None) -> str:
    if task == "all":
        return "bonefrac_resnet50.keras"
    if task == "part":
        return "bonefrac_part_resnet50.keras"
    return f"bonefrac_fracture_{part}_resnet50.keras"


def entries_for(task: str, part: str | None) -> list[str]:
    if task == "all":
        return list(MODEL_NAMES)
    return ["body_part"] if task == "part" else [f"fracture_{part}"]


def publish(model: keras.Model, record: dict[str, Any], samples: list[Sample], args: argparse.Namespace) -> None:
    config = record["config"]
    models_dir: Path = args.models_dir
    models_dir.mkdir(parents=True, exist_ok=True)
    file_name = file_name_for(config["task"], config["part"])
    target = models_dir / file_name
    averaged, weight = _publish_options(args)
    if averaged:
        average_with(model, averaged)
    if weight:
        blend_with_any_head(model, weight)  # the run's best.keras keeps each part's own head
    backup = models_dir / f".{file_name}.previous"
    temporary = models_dir / f".{file_name}.tmp.keras"
    model.save(temporary)  # compiled=False model: no optimizer state, inference weights only
    if target.exists():
        os.replace(target, backup)
    os.replace(temporary, target)
    try:
        _publish_entries(target, record, samples, args)
    except BaseException:
        # Measuring failed: put the previous model back, so it still matches the manifest.
        if backup.exists():
            os.replace(backup, target)
        raise
    backup.unlink(missing_ok=True)
    print(f"published {file_name} and {MANIFEST_NAME} in {models_dir}")


def _publish_entries(target: Path, record: dict[str, Any], samples: list[Sample], args: argparse.Namespace) -> None:
    config = record["config"]
    models_dir, file_name = target.parent, target.name
    digest = sha256_of(target)
    raw = _existing_manifest(models_dir)
    stages = record["stages"]
    averaged, weight = _publish_options(args)
    trained_with = {
        "file": file_name,
        "architecture": "keras.applications.ResNet50; body-region softmax summed into parts; fracture map on the "
        "stride-16 grid, trained with the data's fracture boxes and pooled by log-sum-exp into the image probability"
        + _blend_words(weight)
        + _average_words(averaged),
        "any_head_weight": weight,
        "averaged_with": [str(path) for path in averaged],
        # Over every stage (a run started from another run's checkpoint continues it).
        "init": stages[0]["init"],
        "input_size": config["input_size"],
        "epochs_run": sum(stage["epochs_run"] for stage in stages),
        "duration_s": round(sum(stage["duration_s"] for stage in stages), 1),
        "stages": stages,
        "train_images": record["train_images"],
        "val_images": record["val_images"],
        "machine": describe_machine(),
        "config": config,
        "data": data_card(samples, args.data),
    }
    for name in entries_for(config["task"], config["part"]):
        output, index = ("part", None) if name == "body_part" else ("fracture", FRACTURE_HEADS.index(name[9:]))
        raw["models"][name] = {
            "file": file_name,
            "sha256": digest,
            "input_size": config["input_size"],
            "output": output,
            "output_index": index,
            "class_names": list(PART_NAMES) if output == "part" else ["normal", "fractured"],
            "trained_with": trained_with,
        }
    # A stage that continued another run's checkpoint: that run's history comes first.
    histories = [
        *((f"{stage['input_size']} px", Path(stage["init"]).parent / "history.csv") for stage in stages[1:]),
        (f"{config['input_size']} px", Path(args.run_dir) / "history.csv"),
    ]
    measure(models_dir, raw, samples, args, histories=histories)


def _publish_options(args: argparse.Namespace) -> tuple[list[Path], float]:
    """--average-with and --any-head-weight (only `all` has them; a part or fracture run neither)."""
    return getattr(args, "average_with", []), getattr(args, "any_head_weight", 0.0)


def _blend_words(weight: float) -> str:
    if not weight:
        return ""
    return (
        f"; each part's map cell by cell {1 - weight:g} its own head + {weight:g} the head trained on every "
        "fractured image"
    )


def _average_words(files: list[Path]) -> str:
    if not files:
        return ""
    names = ", ".join(path.parent.name for path in files)
    return f"; weights: the uniform average of this run's best and {len(files)} earlier models' ({names})"


def evaluate_models(models_dir: Path, samples: list[Sample], args: argparse.Namespace) -> None:
    raw = load_manifest(models_dir).raw
    measure(models_dir, raw, samples, args, histories=[])
    print(f"re-measured the models in {models_dir}")


def _existing_manifest(models_dir: Path) -> dict[str, Any]:
    if (models_dir / MANIFEST_NAME).is_file():
        return load_manifest(models_dir, verify=False).raw
    return {"format_version": 1, "models": {}}


def measure(
    models_dir: Path,
    raw: dict[str, Any],
    samples: list[Sample],
    args: argparse.Namespace,
    histories: list[tuple[str, Path]],
) -> None:
    """Choose thresholds on val, measure on test, draw the figures, write the manifest."""
    figures_dir = models_dir / "figures"
    figures_dir.mkdir(exist_ok=True)
    missing = [name for name in MODEL_NAMES if name not in raw["models"]]
    if missing:
        raise ValueError(f"the manifest has no {', '.join(missing)} model yet: train with 'bonefrac-train all' first")
    outputs = _predict_all(models_dir, raw, samples, args)
    roc_curves, verdict_matrices = {}, {}
    for name in MODEL_NAMES:
        entry = raw["models"][name]
        val, test = (outputs[(entry["file"], entry["input_size"], split)] for split in ("val", "test"))
        if name == "body_part":
            known_val = [i for i, s in enumerate(val["samples"]) if s.part in PART_NAMES]
            known_test = [i for i, s in enumerate(test["samples"]) if s.part in PART_NAMES]
            val_parts = [val["samples"][i].part for i in known_val]
            test_parts = [test["samples"][i].part for i in known_test]
            entry["min_confidence"] = min_confidence_for_accuracy(val_parts, val["part"][known_val], PART_NAMES)
            val_report = part_report(val_parts, val["part"][known_val], PART_NAMES, _groups(val, known_val))
            entry["validation"] = {
                "images": len(known_val),
                "accuracy": val_report["accuracy"],
                "accuracy_ci": val_report["accuracy_ci"],
            }
            entry["metrics"] = {
                "split": "test",
                **part_report(test_parts, test["part"][known_test], PART_NAMES, _groups(test, known_test)),
                "refused_below_min_confidence": _refused_share(test["part"][known_test], entry["min_confidence"]),
                "scope": scope_report(test_parts, test["part"][known_test], entry["min_confidence"]),
            }
            test_regions = [test["samples"][i].region for i in known_test]
            if all(test_regions):
                entry["metrics"]["by_region"] = part_by_region(
                    test_parts, test_regions, test["part"][known_test], PART_NAMES
                )
            figures.confusion_matrix_png(entry["metrics"]["confusion_matrix"], figures_dir / "part_confusion.png")
            continue
        part = name[len("fracture_") :]
        index = entry["output_index"]
        val_rows = [i for i, s in enumerate(val["samples"]) if s.part == part]
        test_rows = [i for i, s in enumerate(test["samples"]) if s.part == part]
        val_labels = np.array([val["samples"][i].fractured for i in val_rows])
        test_labels = np.array([test["samples"][i].fractured for i in test_rows])
        val_scores, test_scores = val["fracture"][val_rows, index], test["fracture"][test_rows, index]
        thresholds = operating_thresholds(val_labels, val_scores)
        entry["thresholds"] = thresholds.to_dict()
        # Validation figures are what runs may be compared on; the test split is never used for choices.
        entry["validation"] = validation_figures(
            val_labels, val_scores, [val["samples"][i].source for i in val_rows], _groups(val, val_rows)
        )
        entry["metrics"] = {
            "split": "test",
            **fracture_report(
                test_labels,
                test_scores,
                thresholds,
                groups=_groups(test, test_rows),
                sources=[test["samples"][i].source for i in test_rows],
            ),
        }
        if "fracture_map" in test:
            entry["validation"]["pointing_game"] = _pointing_game(val, val_rows, index)
            entry["metrics"]["pointing_game"] = _pointing_game(test, test_rows, index)
        roc_curves[part] = (test_labels, test_scores)
        verdict_matrices[part] = verdict_matrix(test_labels, test_scores, thresholds)
    figures.roc_png(roc_curves, figures_dir / "fracture_roc.png")
    figures.verdict_matrix_png(verdict_matrices, figures_dir / "fracture_verdicts.png")
    # Stages whose history was kept (a published model used as --init has none beside it).
    kept = [(label, history) for label, history in histories if history.is_file()]
    if kept:
        figures.training_curves_png(kept, figures_dir / "training_curves.png")
    raw["figures"] = sorted(str(p.relative_to(models_dir)) for p in figures_dir.glob("*.png"))
    raw["preprocessing_version"] = PREPROCESSING_VERSION  # the app refuses models prepared otherwise
    raw["notice"] = NOTICE
    raw["measured_utc"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    raw["measured_on"] = describe_machine()
    shas = sorted({raw["models"][n]["sha256"] for n in MODEL_NAMES})
    raw["model_version"] = f"{dt.date.today():%Y.%m.%d}-{hashlib.sha256(''.join(shas).encode()).hexdigest()[:8]}"
    write_manifest(models_dir, raw)
    if models_dir.resolve() == (REPO / "models").resolve():
        update_readme(models_dir)  # the README's model card follows the shipped models


def _predict_all(
    models_dir: Path, raw: dict[str, Any], samples: list[Sample], args: argparse.Namespace
) -> dict[tuple[str, int, str], dict[str, Any]]:
    """Run each distinct (model file, input size) once over the val and test images."""
    results: dict[tuple[str, int, str], dict[str, Any]] = {}
    passes = {(raw["models"][name]["file"], raw["models"][name]["input_size"]) for name in MODEL_NAMES}
    models: dict[str, keras.Model] = {}
    for file_name, size in sorted(passes):
        if file_name not in models:
            models[file_name] = keras.models.load_model(models_dir / file_name, compile=False)
        for split in ("val", "test"):
            chosen = deterministic_subset([s for s in samples if s.split == split and s.part in PART_NAMES], args.limit)
            pixels, kept = load_pixels(chosen, size, args.cache_dir, args.workers)
            inputs = pixels[..., np.newaxis].astype(np.float32) / 255.0
            predicted = models[file_name].predict(inputs, batch_size=64, verbose=keras_verbosity())
            results[(file_name, size, split)] = {"samples": kept, **{k: np.asarray(v) for k, v in predicted.items()}}
    return results


def _groups(outputs: dict[str, Any], rows: list[int]) -> list[str]:
    return [outputs["samples"][i].group for i in rows]


def _pointing_game(outputs: dict[str, Any], rows: list[int], index: int) -> dict[str, Any]:
    """Does the map's most suspicious cell touch a fracture box, on the fractured images that have boxes."""
    boxed = [i for i in rows if outputs["samples"][i].fractured and placeable(outputs["samples"][i])]
    return pointing_game(
        outputs["fracture_map"][boxed, :, :, index],
        [square_boxes(outputs["samples"][i]) for i in boxed],
        _groups(outputs, boxed),
    )


def verdict_matrix(labels: np.ndarray, scores: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """Counts of true normal/fractured (rows) by verdict normal/uncertain/fractured (columns)."""
    columns = (Verdict.NORMAL, Verdict.UNCERTAIN, Verdict.FRACTURED)
    called = verdicts(scores, thresholds)
    return np.array([[sum(c is v and y == row for c, y in zip(called, labels)) for v in columns] for row in (0, 1)])


def scope_report(true_parts: list[str], probabilities: np.ndarray, min_confidence: float) -> dict[str, Any]:
    """How the "not supported" answer behaves on held-out test images: the share of other body
    parts (leg, hip, forearm, wrist, humerus, ...) refused, and of elbow/hand/shoulder images
    wrongly refused (routed to "other" or below the confidence cut)."""
    predicted = [PART_NAMES[i] for i in probabilities.argmax(axis=1)]
    refused = [p not in SUPPORTED_PARTS or c < min_confidence for p, c in zip(predicted, probabilities.max(axis=1))]
    outside = [r for r, t in zip(refused, true_parts) if t not in SUPPORTED_PARTS]
    inside = [r for r, t in zip(refused, true_parts) if t in SUPPORTED_PARTS]
    return {
        "out_of_scope_images": len(outside),
        "out_of_scope_refused": round(float(np.mean(outside)), 4) if outside else None,
        "in_scope_images": len(inside),
        "in_scope_wrongly_refused": round(float(np.mean(inside)), 4) if inside else None,
    }


def _refused_share(probabilities: np.ndarray, min_confidence: float) -> float:
    return round(float((probabilities.max(axis=1) < min_confidence).mean()), 4)


def data_card(samples: list[Sample], location: Path) -> dict[str, Any]:
    counts = Counter((s.split, s.source, s.part, s.fractured) for s in samples)
    return {
        "location": location.name,
        "images": len(samples),
        "splits": dict(Counter(s.split for s in samples)),
        "by_split_source_part_fractured": [
            {"split": k[0], "source": k[1], "part": k[2], "fractured": k[3], "images": v}
            for k, v in sorted(counts.items())
        ],
        "supported_parts": list(SUPPORTED_PARTS),
        "labels": "fracture yes/no per source dataset; body part from source flags or visual review (see data README)",
    }
