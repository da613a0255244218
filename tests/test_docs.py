"""What the README says about the models is what the manifest measured."""

from __future__ import annotations

import json

import pytest

from app.diagnosis.manifest import load_manifest
from app.diagnosis.model_card import training_data_summary
from tests.conftest import MODELS_DIR
from training.card import _region_errors
from training.card import main as card_main


def test_readme_model_card_matches_the_manifest(capsys):
    assert card_main(["--check"]) == 0, capsys.readouterr().out


def test_card_lists_the_largest_body_part_confusions_first():
    by_region = {
        "wrist": {"part": "other", "images": 71, "predicted": {"elbow": 1, "hand": 43, "shoulder": 0, "other": 27}},
        "hand": {"part": "hand", "images": 194, "predicted": {"elbow": 2, "hand": 181, "shoulder": 0, "other": 11}},
    }
    line = _region_errors(by_region, shown=2)
    assert "wrist (other) as hand: 43 of 71; hand (hand) as other: 11 of 194." in line
    assert _region_errors({}) == ""


@pytest.mark.parametrize(
    ("init", "words"),
    [
        ("none", "Trained from scratch (no pretrained weights)"),
        ("imagenet", "Fine-tuned from ImageNet weights"),
        ("/home/dev/runs/stage1/best.keras", "Fine-tuned from an earlier model (best.keras)"),
    ],
)
def test_training_summary_says_how_the_weights_started(init, words, tmp_path):
    raw = json.loads((MODELS_DIR / "manifest.json").read_text())
    raw["models"]["body_part"]["trained_with"]["init"] = init
    (tmp_path / "manifest.json").write_text(json.dumps(raw))
    for model in MODELS_DIR.glob("*.keras"):
        (tmp_path / model.name).symlink_to(model)
    assert training_data_summary(load_manifest(tmp_path)).startswith(words)
