"""Staged recipes: `bonefrac-train recipe` runs one stage per call, resumes a stage its time
budget stopped, chains stages by their best models and publishes after the last, on a tiny real
ResNet-50 trained on a few real X-rays."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from app.diagnosis import Diagnoser
from tests.conftest import DATA_DIR, REPO
from training.cli import main as train_main
from training.model import FRACTURE_HEADS
from training.recipe import EXIT_MORE_STAGES, SHIPPED_RECIPE, load_recipe

TINY_STAGES = """
[defaults]
input_size = 64
batch_size = 8
patience = 5
learning_rate = 1e-3

[[stage]]
name = "first"
epochs = 2
max_minutes = 0.01  # stops after each epoch: the next call must resume it

[[stage]]
name = "second"
init = "first"
epochs = 1
max_minutes = 30
"""


def _recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _run(recipe: Path, runs: Path, cache: Path, *extra: str) -> int:
    return train_main(
        [
            "recipe",
            str(recipe),
            "--runs-dir",
            str(runs),
            "--data",
            str(DATA_DIR),
            "--limit",
            "24",
            "--workers",
            "1",
            "--cache-dir",
            str(cache),
            *extra,
        ]
    )


def test_the_shipped_recipe_loads_and_chains_its_stages():
    recipe = load_recipe(SHIPPED_RECIPE)
    names = [s.name for s in recipe.stages]
    assert recipe.stages[0].init == "none"  # the shipped models start from scratch
    assert [s.init for s in recipe.stages[1:]] == names[:-1]  # each stage continues the one before
    assert all(s.max_minutes <= 150 for s in recipe.stages)
    assert sum(s.max_minutes for s in recipe.stages) <= 8 * 60
    assert {s.sources for s in recipe.stages} == {("fracatlas", "roboflow")}
    assert set(recipe.average) < set(names[:-1]) and 0 < recipe.any_head_weight < 1


def test_make_models_runs_the_shipped_recipe_over_the_shipped_models():
    makefile = (REPO / "Makefile").read_text()
    target = makefile[makefile.index("\nmodels:") :].split("\n\n")[0]
    assert "bonefrac-train recipe" in target and "--models-dir models" in target


GOOD_STAGE = '[[stage]]\nname = "a"\ninput_size = 64\nepochs = 1\nlearning_rate = 0.001\n'


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (GOOD_STAGE + "max_minutes = 200\n", "at most 150"),
        (GOOD_STAGE + "max_minutes = 9\nspeed = 2\n", "unknown setting speed"),
        (GOOD_STAGE + 'max_minutes = 9\ninit = "zero"\n', "init 'zero' is no earlier stage"),
        (GOOD_STAGE.replace("epochs = 1\n", "") + "max_minutes = 9\n", "missing setting epochs"),
        (GOOD_STAGE + 'max_minutes = 9\nprecision = "fp8"\n', "precision must be"),
        (GOOD_STAGE.replace("epochs = 1", 'epochs = "1"') + "max_minutes = 9\n", "wrong type for epochs"),
        (GOOD_STAGE + 'max_minutes = 9\nsources = "fracatlas"\n', "wrong type for sources"),
        (GOOD_STAGE.replace('name = "a"', 'name = "../up"') + "max_minutes = 9\n", "a stage name is letters"),
        (GOOD_STAGE.replace('name = "a"', 'name = "models"') + "max_minutes = 9\n", "not 'models'"),
        (GOOD_STAGE + "max_minutes = 9\n[publish]\nany_head_weight = 1.5\n", "any_head_weight must be a number"),
        (GOOD_STAGE + "max_minutes = 9\n[publish]\nany_head_weight = true\n", "any_head_weight must be a number"),
        (GOOD_STAGE + "max_minutes = 9\n[publish]\nblend = 0.5\n", "[publish] takes only any_head_weight"),
        (GOOD_STAGE + 'max_minutes = 9\n[publish]\naverage = ["a"]\n', "average must list earlier stages"),
        ("[[stage]\nname = 3", "not valid TOML"),
        ("[defaults]\ninput_size = 64\n", "no [[stage]] tables"),
    ],
)
def test_a_faulty_recipe_is_refused_in_one_line_before_any_work(tmp_path, capsys, text, words):
    status = train_main(["recipe", str(_recipe(tmp_path, text)), "--runs-dir", str(tmp_path / "runs")])
    error = capsys.readouterr().err.strip()
    assert status == 2
    assert error.startswith("error: ") and words in error and "\n" not in error
    assert not (tmp_path / "runs").exists()


def test_a_missing_recipe_is_refused_in_one_line(tmp_path, capsys):
    assert train_main(["recipe", str(tmp_path / "nowhere.toml"), "--status"]) == 2
    assert capsys.readouterr().err.strip() == f"error: no recipe file {tmp_path / 'nowhere.toml'}"


def test_recipe_all_runs_every_stage_to_its_end_and_publishes_in_one_call(tmp_path, capsys):
    """`make models`: one command rebuilds the model, resuming the stage its budget stops."""
    recipe, runs, cache = _recipe(tmp_path, TINY_STAGES), tmp_path / "runs", tmp_path / "cache"
    assert _run(recipe, runs, cache, "--all") == 0
    manifest = json.loads((runs / "models" / "manifest.json").read_text())
    trained = manifest["models"]["body_part"]["trained_with"]
    assert [stage["epochs_run"] for stage in trained["stages"]] == [2, 1]
    assert "every stage is finished: publishing stage second" in capsys.readouterr().out


def test_recipe_runs_one_stage_per_call_resumes_and_publishes_after_the_last(tmp_path, capsys, monkeypatch):
    recipe, runs, cache = _recipe(tmp_path, TINY_STAGES), tmp_path / "runs", tmp_path / "cache"

    # Call 1: the first stage's time budget stops it after one of its two epochs; nothing is
    # published yet, and the exit status says "call again", not "done".
    assert _run(recipe, runs, cache) == EXIT_MORE_STAGES
    record = json.loads((runs / "first" / "record.json").read_text())
    assert (record["epochs_run"], record["finished"], record["stopped_by"]) == (1, False, "time budget")
    assert not (runs / "second").exists()
    capsys.readouterr()
    assert _run(recipe, runs, cache, "--status") == 0
    assert "first: 64 px, 2 epochs" in capsys.readouterr().out
    assert "stopped after 1 of 2 epochs" in _status(recipe, runs, capsys)

    # Call 2 resumes it: epoch 2 only, and the stage is finished.
    assert _run(recipe, runs, cache) == EXIT_MORE_STAGES
    rows = (runs / "first" / "history.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and rows[-1].startswith("1,")
    assert json.loads((runs / "first" / "record.json").read_text())["finished"] is True
    assert not (runs / "models").exists()

    # Call 3: the second stage starts from the first's best model, then everything is published.
    assert _run(recipe, runs, cache) == 0
    second = json.loads((runs / "second" / "config.json").read_text())
    assert second["init"] == str(runs / "first" / "best.keras")
    manifest = json.loads((runs / "models" / "manifest.json").read_text())
    trained = manifest["models"]["body_part"]["trained_with"]
    assert [stage["epochs_run"] for stage in trained["stages"]] == [2, 1]
    diagnosis = Diagnoser(runs / "models").diagnose(sorted((DATA_DIR / "images" / "fracatlas").glob("*.jpg"))[0])
    assert diagnosis.part_probabilities  # the published model loads in the app and runs

    # Call 4 has nothing left to do, and says so.
    capsys.readouterr()
    published = (runs / "models" / "manifest.json").read_bytes()
    assert _run(recipe, runs, cache) == 0
    assert "every stage is finished; its model is published" in capsys.readouterr().out
    assert (runs / "models" / "manifest.json").read_bytes() == published

    # The same runs folder written another way (relative, from elsewhere) is the same recipe.
    monkeypatch.chdir(runs.parent)
    assert _run(recipe, Path("runs"), cache) == 0
    assert "every stage is finished; its model is published" in capsys.readouterr().out

    # Publishing the recipe another way (the weight average of both stages, each part's map
    # blended with the all-parts head) publishes again and trains nothing.
    blended = _recipe(tmp_path, TINY_STAGES + '\n[publish]\nany_head_weight = 0.25\naverage = ["first"]\n')
    history = (runs / "second" / "history.csv").read_text()
    assert _run(blended, runs, cache) == 0
    assert (runs / "second" / "history.csv").read_text() == history
    trained = json.loads((runs / "models" / "manifest.json").read_text())["models"]["fracture_hand"]["trained_with"]
    assert trained["any_head_weight"] == 0.25 and trained["averaged_with"] == [str(runs / "first" / "best.keras")]
    assert "0.25 the head trained on every fractured image" in trained["architecture"]
    first, second = _weights(runs / "first" / "best.keras"), _weights(runs / "second" / "best.keras")
    published = _weights(runs / "models" / "bonefrac_resnet50.keras")
    mean = {layer: [(a + b) / 2 for a, b in zip(first[layer], second[layer], strict=True)] for layer in first}
    for own, expected in zip(published["region"], mean["region"], strict=True):
        np.testing.assert_allclose(own, expected, rtol=1e-5, atol=1e-6)
    hand, anything = FRACTURE_HEADS.index("hand"), FRACTURE_HEADS.index("any")
    for own, expected in zip(published["map_logits"], mean["map_logits"], strict=True):  # kernel, bias
        np.testing.assert_allclose(
            own[..., hand], 0.75 * expected[..., hand] + 0.25 * expected[..., anything], rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(own[..., anything], expected[..., anything], rtol=1e-5, atol=1e-6)
    assert _run(blended, runs, cache) == 0
    assert "every stage is finished; its model is published" in capsys.readouterr().out

    # A smoke run's stages never pass for the real data's: another --limit is refused.
    assert _run(recipe, runs, cache, "--limit", "0") == 2
    error = capsys.readouterr().err
    assert "stage first" in error and "trained on" in error and "at most 24 images per split" in error

    # A later stage started from a model of the first that has been retrained since is stale.
    first_record = runs / "first" / "record.json"
    kept = first_record.read_text()
    retrained = json.loads(kept)
    retrained["stages"][-1]["duration_s"] += 1.0
    first_record.write_text(json.dumps(retrained))
    assert _run(recipe, runs, cache) == 2
    assert "has been trained again since" in capsys.readouterr().err
    first_record.write_text(kept)

    # A recipe changed under a trained stage is refused rather than mixing two stages' settings.
    changed = _recipe(tmp_path, TINY_STAGES.replace("learning_rate = 1e-3", "learning_rate = 5e-4"))
    assert _run(changed, runs, cache) == 2
    error = capsys.readouterr().err.strip()
    assert "stage first" in error and "learning_rate" in error and "delete that folder" in error


def _weights(model_file: Path) -> dict[str, list[np.ndarray]]:
    model = keras.models.load_model(model_file, compile=False)
    return {name: model.get_layer(name).get_weights() for name in ("region", "map_logits")}


def _status(recipe: Path, runs: Path, capsys) -> str:
    assert train_main(["recipe", str(recipe), "--runs-dir", str(runs), "--status"]) == 0
    return capsys.readouterr().out
