"""What the README says about the models is what the manifest measured."""

from __future__ import annotations

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
