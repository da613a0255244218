"""The training package on a few real X-rays: data layouts, splits, a tiny real model
trained and published, resumed, and a per-part model replacing one manifest entry."""

from __future__ import annotations

import argparse
import json
import os
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
from training.cli import build_parser, models_dir
from training.cli import main as train_main
from training.data import load_samples, split_for_group
from training.model import build_model
from training.pipeline import only_sources, parse_sources

# bfloat16 whatever the CPU, so that the float32 conversion before publishing is always exercised.
TINY = ["--limit", "24", "--input-size", "64", "--batch-size", "8", "--workers", "1", "--precision", "bfloat16"]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A real ResNet-50, trained one epoch on 24 real images per split and published, run as a
    user runs it with its output redirected to files, with the default models and cache folders
    (the user cache folder is XDG_CACHE_HOME, here a scratch one)."""
    root = tmp_path_factory.mktemp("tiny")
    # Never run a default that would publish over the shipped models.
    default = models_dir(build_parser().parse_args(["all", "--run-dir", str(root / "run")]))
    assert default.resolve().is_relative_to(root), f"the default publishes into {default}"
    shipped = (REPO / "models" / "manifest.json").read_bytes()
    arguments = ["all", "--data", str(DATA_DIR), "--epochs", "1", "--run-dir", str(root / "run"), *TINY]
    with (root / "stdout.txt").open("w") as out, (root / "stderr.txt").open("w") as err:
        result = subprocess.run(
            [sys.executable, "-m", "training", *arguments],
            stdout=out,
            stderr=err,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(root / "xdg")},
            timeout=900,
        )
    assert result.returncode == 0, (root / "stderr.txt").read_text()[-3000:]
    assert (REPO / "models" / "manifest.json").read_bytes() == shipped
    return root


def _user_cache(root: Path) -> Path:
    """The image cache of a run whose XDG_CACHE_HOME is root/xdg (as tiny_models runs)."""
    return root / "xdg" / "bonefrac" / "images"


def test_training_publishes_into_its_run_folder_by_default(tiny_models):
    assert load_manifest(tiny_models / "run" / "models").version  # verifies every sha256
    assert not (tiny_models / "models").exists()


def test_training_output_redirected_is_plain_and_ends_with_the_validation_figures(tiny_models):
    err = (tiny_models / "stderr.txt").read_text()
    out = (tiny_models / "stdout.txt").read_text()
    assert "Traceback" not in err
    assert "oneDNN" not in err and "cpu_feature_guard" not in err  # TensorFlow's C++ INFO lines
    assert "shuffle=True" not in err
    manifest = json.loads((tiny_models / "run" / "models" / "manifest.json").read_text())
    lines = out.strip().splitlines()
    heading = lines.index(next(line for line in lines if line.startswith("validation figures of model ")))
    assert manifest["model_version"] in lines[heading]
    assert lines[heading - 1].startswith("best epoch 1 of 1: validation loss ")
    figures = lines[heading + 1 :]
    assert [line.split(":")[0].strip() for line in figures] == list(manifest["models"])
    for line, (name, entry) in zip(figures, manifest["models"].items()):
        key = "accuracy" if name == "body_part" else "auroc"
        validation = entry["validation"]
        assert line.endswith(f" on {validation['images']} images")
        if validation[key] is None:
            assert f"{key} not measured" in line
        elif validation.get(f"{key}_ci") is None:
            assert line.startswith(f"  {name}: {key} {validation[key]:.3f} on ")
        else:  # the figure with its interval, as the manifest has them
            low, high = validation[f"{key}_ci"]
            assert f"{key} {validation[key]:.3f} (95% CI {low:.3f}-{high:.3f})" in line


def test_redirected_training_output_has_no_terminal_codes(tiny_models):
    out = (tiny_models / "stdout.txt").read_text()
    assert "\x1b[" not in out and "\b" not in out


def test_image_cache_goes_to_the_user_cache_folder_not_the_current_one(tiny_models):
    assert list(_user_cache(tiny_models).glob("pixels_*.npz"))
    assert not (tiny_models / ".cache").exists()


def test_published_manifest_is_complete_and_loadable(tiny_models, xray_paths):
    manifest = load_manifest(tiny_models / "run" / "models")  # verifies every sha256
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
    assert (tiny_models / "run" / "models" / "figures" / "fracture_roc.png").exists()
    assert (tiny_models / "run" / "models" / "figures" / "part_confusion.png").exists()
    diagnosis = Diagnoser(tiny_models / "run" / "models").diagnose(xray_paths["hand_1"])
    assert diagnosis.model_version == manifest.version
    assert diagnosis.part in ("elbow", "hand", "shoulder", "other")


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
            str(_user_cache(tiny_models)),
            *TINY,
        ]
    )
    assert status == 0
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and rows[-1].startswith("1,")  # only epoch 2 ran: epoch 1 was restored
    assert json.loads((run / "wallclock.json").read_text())["seconds"] > first_seconds  # time adds up


def test_per_part_model_replaces_one_entry(tiny_models):
    models = tiny_models / "run" / "models"
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
            str(_user_cache(tiny_models)),
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
    path = tiny_models / "run" / "models" / "bonefrac_resnet50.keras"
    trained = json.loads((tiny_models / "run" / "models" / "manifest.json").read_text())["models"]["body_part"]
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
        ["all", "--any-head-weight", "1.5", "--limit", "8", "--epochs", "1"],
        ["all", "--average-with", "/no/such/model.keras", "--limit", "8", "--epochs", "1"],
    ],
    ids=["missing-data", "missing-init", "unknown-source", "any-head-weight", "average-with"],
)
def test_training_cli_errors_are_one_line(args, tmp_path):
    result = _run_training_cli(args, tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr


def test_training_help_describes_every_option_and_its_default():
    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    for name, command in commands.choices.items():
        formatter = command._get_formatter()
        for action in command._actions:
            if action.dest == "help":
                continue
            assert action.help, f"{name} {action.option_strings}: no help"
            # The help as --help prints it: with "(default: ...)" or its own words for the default.
            shown = formatter._expand_help(action) if action.help else ""
            assert "default" in shown or action.required, f"{name} {action.option_strings}: no default shown"


@pytest.mark.parametrize(
    ("blocked", "package", "command"),
    [("matplotlib", "matplotlib", ["all", "--limit", "8", "--epochs", "1"]), ("sklearn", "scikit-learn", ["evaluate"])],
)
def test_missing_train_extra_is_named_before_any_work(blocked, package, command, tmp_path):
    """As after `make run` (no train extra): the package cannot be imported in that process."""
    block = f"import sys; sys.modules[{blocked!r}] = None; from training.cli import main; sys.exit(main(sys.argv[1:]))"
    command = [*command, "--data", str(DATA_DIR), "--cache-dir", str(tmp_path / "cache")]
    command += ["--models-dir", str(tmp_path / "m")]
    if command[0] != "evaluate":
        command += ["--run-dir", str(tmp_path / "run")]
    result = subprocess.run(
        [sys.executable, "-c", block, *command],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and package in lines[0]
    assert 'pip install "bonefrac[train]"' in lines[0] and "make install-dev" in lines[0]
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()  # nothing was done


def test_part_model_without_a_complete_set_to_join_is_refused_before_any_work(tmp_path, capsys):
    """A fracture or part model replaces one manifest entry: publishing into the run's own, empty
    folder (the default) would fail only after training; it is refused at once."""
    run, cache = tmp_path / "run", tmp_path / "cache"
    arguments = ["--data", str(DATA_DIR), "--run-dir", str(run), "--cache-dir", str(cache), "--epochs", "1"]
    assert train_main(["fracture", "--part", "elbow", *arguments]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--models-dir" in err[0] and str(run / "models") in err[0]
    assert not run.exists() and not cache.exists()  # nothing was done


def test_multiworker_is_refused_in_one_line_before_any_work(tmp_path):
    """Keras 3 cannot fit under MultiWorkerMirroredStrategy (keras-team/keras#20585): say so at once."""
    result = _run_training_cli(["all", "--strategy", "multiworker", "--limit", "8", "--epochs", "1"], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "keras-team/keras#20585" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


def test_published_model_pools_its_fracture_map_into_the_image_probability(tiny_models, xray_paths):
    """The image probability is the log-sum-exp pool of the map's cells (multiple-instance
    learning), and the map lies on the stride-16 grid of the input."""
    from app.diagnosis.layers import LSE_SHARPNESS
    from training.model import MAP_STRIDE

    model = keras.models.load_model(tiny_models / "run" / "models" / "bonefrac_resnet50.keras", compile=False)
    image = to_model_input(read_xray(xray_paths["hand_1"]), 64)[np.newaxis]
    outputs = {name: np.asarray(value, dtype=np.float64) for name, value in model(image).items()}
    cells = outputs["fracture_map"][0]
    assert cells.shape[:2] == (64 // MAP_STRIDE, 64 // MAP_STRIDE)
    logits = np.log(cells / (1 - cells)).reshape(-1, cells.shape[-1])
    pooled = np.log(np.mean(np.exp(LSE_SHARPNESS * logits), axis=0)) / LSE_SHARPNESS
    np.testing.assert_allclose(outputs["fracture"][0], 1 / (1 + np.exp(-pooled)), atol=1e-4)
    np.testing.assert_allclose(outputs["part"][0].sum(), 1.0, atol=1e-5)  # regions summed into parts


def test_the_app_loads_a_fracture_map_model_without_the_training_package(tiny_models, xray_paths):
    """Its pooling layer is the app's own (app/diagnosis/layers.py): a clinic's install needs no training code."""
    models = tiny_models / "run" / "models"
    code = (
        "import sys; from app.diagnosis import Diagnoser; "
        f"d = Diagnoser({str(models)!r}).diagnose({str(xray_paths['hand_1'])!r}); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'training'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_early_stopping_counts_the_epochs_of_a_resumed_run(tmp_path):
    """A stage its time budget split in two stops where it would have stopped in one go."""
    from training.train import ResumableEarlyStopping

    history = tmp_path / "history.csv"
    history.write_text("epoch,loss,val_loss\n0,2.0,1.0\n1,1.5,0.5\n2,1.2,0.7\n", encoding="utf-8")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    stopping = ResumableEarlyStopping(history, patience=2)
    stopping.set_model(model)
    stopping.on_train_begin()
    assert (stopping.best, stopping.wait) == (0.5, 1)  # epoch 2 was one without progress
    stopping.on_epoch_end(3, {"val_loss": 0.8})
    assert model.stop_training and stopping.stopped_epoch == 3  # the second: patience spent
    fresh = ResumableEarlyStopping(tmp_path / "none.csv", patience=2)
    fresh.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    fresh.on_train_begin()
    assert fresh.best is None and fresh.wait == 0
