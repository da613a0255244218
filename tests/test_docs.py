"""What the README says about the models is what the manifest measured."""

from __future__ import annotations

from training.card import main as card_main


def test_readme_model_card_matches_the_manifest(capsys):
    assert card_main(["--check"]) == 0, capsys.readouterr().out
