"""The training package on a few real X-rays: data layouts, splits, a tiny real model
trained and published, resumed, and a per-part model replacing one manifest entry."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from app.diagnosis import Diagnoser
from app.diagnosis.manifest import MODEL_NAMES, load_manifest
from app.xray import read_xray, to_model_input
from tests.conftest import DATA_DIR, REPO
from training.cli import main as train_main
from training.data import load_samples, split_for_group
from training.model import build_model
from training.pipeline import only_sources, parse_sources
from training.publish import window_scores

# bfloat16 whatever the CPU, so that the float32 conversion before publishing is always exercised.
TINY = ["--limit", "24", "--input-size", "64", "--batch-size", "8", "--workers", "1", "--precision", "bfloat16"]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A real ResNet-50, trained one epoch on 24 real images per split, published."""
    root = tmp_path_factory.mktemp("tiny")
    status = train_main(
        [
            "all",
            "--data",
            str(DATA_DIR),
            "--epochs",
            "1",
            "--models-dir",
            str(root / "models"),
            "--run-dir",
            str(root / "run"),
            "--cache-dir",
            str(root / "cache"),
            *TINY,
        ]
    )
    assert status == 0
    return root


def test_published_manifest_is_complete_and_loadable(tiny_models, xray_paths):
    manifest = load_manifest(tiny_models / "models")  # verifies every sha256
    assert set(manifest.entries) == set(MODEL_NAMES)
    for name in MODEL_NAMES:
        entry = manifest.entries[name]
        assert entry.input_size == 64
        assert entry.info["trained_with"]["train_images"] > 0
        assert entry.info["metrics"]["split"] == "test"
        if name != "body_part":
            validation = entry.info["validation"]
            assert set(validation["auroc_per_source"]) <= {"fracatlas", "roboflow"}
    by_region = manifest.entries["body_part"].info["metrics"]["by_region"]
    test_images = manifest.entries["body_part"].info["metrics"]["images"]
    assert sum(figures["images"] for figures in by_region.values()) == test_images
    assert all(sum(figures["predicted"].values()) == figures["images"] for figures in by_region.values())
    assert (tiny_models / "models" / "figures" / "fracture_roc.png").exists()
    assert (tiny_models / "models" / "figures" / "part_confusion.png").exists()
    diagnosis = Diagnoser(tiny_models / "models").diagnose(xray_paths["hand_1"])
    assert diagnosis.model_version == manifest.version
    assert diagnosis.part in ("elbow", "hand", "shoulder", "other")


@pytest.fixture(scope="module")
def tiny_window_models(tmp_path_factory):
    """A real ResNet-50 whose fracture heads trained on 64 px crops of 128 px canvases."""
    root = tmp_path_factory.mktemp("tiny_window")
    arguments = ["all", "--data", str(DATA_DIR), "--epochs", "1", "--fracture-canvas", "128"]
    arguments += ["--sources", "fracatlas,roboflow", "--models-dir", str(root / "models")]
    arguments += ["--run-dir", str(root / "run"), "--cache-dir", str(root / "cache"), *TINY]
    assert train_main(arguments) == 0
    return root / "models"


def test_window_model_runs_its_fracture_heads_on_the_larger_image(tiny_window_models, xray_paths):
    manifest = load_manifest(tiny_window_models)
    assert manifest.entries["body_part"].input_size == 64 and manifest.entries["body_part"].window is None
    for part in ("elbow", "hand", "shoulder"):
        entry = manifest.entries[f"fracture_{part}"]
        assert (entry.input_size, entry.window) == (128, 64)
        assert entry.info["trained_with"]["config"]["fracture_canvas"] == 128
    model = keras.models.load_model(tiny_window_models / "bonefrac_resnet50.keras", compile=False)
    xray = read_xray(xray_paths["hand_1"])
    # On an image one window wide, the window score is the head's own output.
    whole = to_model_input(xray, 64)[np.newaxis]
    np.testing.assert_allclose(window_scores(model, whole, 64)[0], np.asarray(model(whole)["fracture"][0]), atol=1e-5)
    # The app scores the 128 px image by its most suspicious 64 px window, as publishing measured it.
    expected = window_scores(model, to_model_input(xray, 128)[np.newaxis], 64)[0]
    diagnoser = Diagnoser(tiny_window_models)
    diagnosis = diagnoser.diagnose(xray)
    for part in ("elbow", "hand", "shoulder"):
        index = manifest.entries[f"fracture_{part}"].output_index
        assert diagnosis.head_probabilities[part] == pytest.approx(expected[index], abs=1e-4)
    # One pass for the part (64 px) and one over the 9 windows of the 128 px image.
    passes = diagnoser._infer([diagnoser._model_inputs(xray)])[0]
    assert sorted(passes, key=str) == sorted(
        [("bonefrac_resnet50.keras", 64), ("bonefrac_resnet50.keras", 128, 64)], key=str
    )
    assert passes[("bonefrac_resnet50.keras", 128, 64)]["fracture"].shape == (9, 4)


def _run_training_cli(arguments: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """`python -m training` as a user runs it, with its own run, cache and models folders: a
    regression must not publish over models/."""
    scratch = [
        *("--run-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")),
        *("--models-dir", str(tmp_path / "models"), "--no-publish"),
    ]
    return subprocess.run(
        [sys.executable, "-m", "training", *arguments, *scratch], capture_output=True, text=True, cwd=REPO, timeout=600
    )


def test_fracture_canvas_needs_boxes(tmp_path, xray_paths):
    for part, label, key in [("hand", "fractured", "hand_1"), ("hand", "normal", "hand_0")]:
        (tmp_path / "data" / part / label).mkdir(parents=True)
        shutil.copy(xray_paths[key], tmp_path / "data" / part / label / f"{key}.jpg")
    arguments = ["all", "--data", str(tmp_path / "data"), "--fracture-canvas", "128", "--epochs", "1"]
    result = _run_training_cli(arguments, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "needs fracture boxes" in result.stderr


def test_training_resumes_from_its_checkpoint(tiny_models):
    run = tiny_models / "run"
    assert len((run / "history.csv").read_text().strip().splitlines()) == 2  # header + epoch 1
    events = (run / "events.log").read_text()
    assert "epoch 1: " in events and "published into" in events
    first_seconds = json.loads((run / "wallclock.json").read_text())["seconds"]
    status = train_main(
        [
            "all",
            "--data",
            str(DATA_DIR),
            "--epochs",
            "2",
            "--no-publish",
            "--run-dir",
            str(run),
            "--cache-dir",
            str(tiny_models / "cache"),
            *TINY,
        ]
    )
    assert status == 0
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and rows[-1].startswith("1,")  # only epoch 2 ran: epoch 1 was restored
    assert json.loads((run / "wallclock.json").read_text())["seconds"] > first_seconds  # time adds up


def test_per_part_model_replaces_one_entry(tiny_models):
    models = tiny_models / "models"
    before = json.loads((models / "manifest.json").read_text())
    status = train_main(
        [
            "fracture",
            "--part",
            "elbow",
            "--data",
            str(DATA_DIR),
            "--epochs",
            "1",
            "--models-dir",
            str(models),
            "--init",
            str(tiny_models / "run" / "best.keras"),
            "--run-dir",
            str(tiny_models / "elbow"),
            "--cache-dir",
            str(tiny_models / "cache"),
            *TINY,
        ]
    )
    assert status == 0
    after = load_manifest(models)
    assert after.entries["fracture_elbow"].file == "bonefrac_fracture_elbow_resnet50.keras"
    assert after.entries["fracture_elbow"].info["trained_with"]["config"]["part"] == "elbow"
    for name in ("body_part", "fracture_hand", "fracture_shoulder"):
        assert after.entries[name].sha256 == before["models"][name]["sha256"]
    assert after.version != before["model_version"]
    # Started from the first run's checkpoint, it continues that run: both stages are counted.
    trained = after.entries["fracture_elbow"].info["trained_with"]
    first_run = json.loads((tiny_models / "run" / "record.json").read_text())
    assert [stage["epochs_run"] for stage in trained["stages"]] == [first_run["epochs_run"], 1]
    assert trained["epochs_run"] == first_run["epochs_run"] + 1
    assert trained["duration_s"] > first_run["duration_s"]


def test_published_model_computes_in_float32_and_init_continues_it(tiny_models, xray_paths):
    path = tiny_models / "models" / "bonefrac_resnet50.keras"
    trained = json.loads((tiny_models / "models" / "manifest.json").read_text())["models"]["body_part"]
    assert trained["trained_with"]["config"]["precision"] == "mixed_bfloat16"
    published = keras.models.load_model(path, compile=False)
    layers = [*published.layers, *published.get_layer("resnet50").layers]
    assert {layer.dtype_policy.name for layer in layers} == {"float32"}
    # --init PATH copies the trunk and the heads: before any training it computes the same.
    continued = build_model(64, init=str(path))
    image = to_model_input(read_xray(xray_paths["elbow_1"]), 64)[np.newaxis]
    for output in ("part", "fracture"):
        np.testing.assert_allclose(continued(image)[output], published(image)[output], atol=1e-6)


def test_manifest_csv_loader_reads_the_shared_data():
    samples = load_samples(DATA_DIR)
    assert len(samples) > 1000
    groups_by_split: dict[str, set[str]] = {}
    for sample in samples:
        groups_by_split.setdefault(sample.split, set()).add(sample.group)
    assert not groups_by_split["train"] & groups_by_split["test"]
    assert not groups_by_split["train"] & groups_by_split["val"]


def test_sources_option_keeps_only_the_named_sources():
    samples = load_samples(DATA_DIR)
    chosen = only_sources(samples, parse_sources(" roboflow, fracatlas,,"))
    assert {s.source for s in chosen} == {"fracatlas", "roboflow"}
    assert len(chosen) == sum(s.source != "multiregion" for s in samples)
    assert only_sources(samples, parse_sources("")) == samples


def test_mura_layout(tmp_path, xray_paths):
    for split, patient, study, image in [
        ("train", "patient00001", "study1_positive", "elbow_1"),
        ("train", "patient00001", "study2_negative", "elbow_0"),
        ("valid", "patient09999", "study1_negative", "hand_0"),
    ]:
        part = "XR_ELBOW" if image.startswith("elbow") else "XR_HAND"
        folder = tmp_path / split / part / patient / study
        folder.mkdir(parents=True)
        shutil.copy(xray_paths[image], folder / "image1.png")
    samples = load_samples(tmp_path)
    assert [(s.part, s.fractured, s.split == "test") for s in samples] == [
        ("elbow", 1, False),
        ("elbow", 0, False),
        ("hand", 0, True),
    ]
    assert samples[0].group == samples[1].group == "XR_ELBOW/patient00001"
    assert samples[0].split == samples[1].split  # one patient never straddles splits


def test_folder_tree_layout(tmp_path, xray_paths):
    for part, label, key in [
        ("hand", "fractured", "hand_1"),
        ("hand", "normal", "hand_0"),
        ("elbow", "normal", "elbow_0"),
    ]:
        (tmp_path / part / label).mkdir(parents=True)
        shutil.copy(xray_paths[key], tmp_path / part / label / f"{key}.jpg")
    samples = load_samples(tmp_path)
    assert sorted((s.part, s.fractured) for s in samples) == [("elbow", 0), ("hand", 0), ("hand", 1)]
    assert all(s.split == split_for_group(s.group) for s in samples)


def test_splits_are_deterministic_and_proportioned():
    splits = [split_for_group(f"group{i}") for i in range(3000)]
    assert splits == [split_for_group(f"group{i}") for i in range(3000)]
    assert 0.65 < splits.count("train") / 3000 < 0.75


@pytest.mark.parametrize(
    "args",
    [
        ["all", "--data", "/no/such/place"],
        ["all", "--init", "/no/such/model.keras", "--limit", "8", "--epochs", "1"],
        ["all", "--sources", "roboflow,mura", "--limit", "8", "--epochs", "1"],
    ],
    ids=["missing-data", "missing-init", "unknown-source"],
)
def test_training_cli_errors_are_one_line(args, tmp_path):
    result = _run_training_cli(args, tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr
