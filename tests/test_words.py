"""An AUROC in words, with its 95% interval when the manifest carries one (`auroc_ci`)."""

from __future__ import annotations

import json
import shutil

from app.diagnosis.manifest import load_manifest
from app.words import auroc_text, skill_text, skill_words
from tests.conftest import MODELS_DIR


def test_auroc_with_and_without_its_interval():
    metrics = load_manifest(MODELS_DIR, verify=False).entries["fracture_shoulder"].info["metrics"]
    bare = {key: value for key, value in metrics.items() if key != "auroc_ci"}
    assert auroc_text(bare) == f"{metrics['auroc']:.2f}"
    assert auroc_text({**bare, "auroc_ci": [0.45, 0.69]}) == f"{metrics['auroc']:.2f} (95% interval 0.45-0.69)"
    assert auroc_text({}) == "n/a"


def test_words_follow_the_figure_and_its_interval():
    assert "close to chance (0.5)" in skill_words({"auroc": 0.57})
    assert skill_words({"auroc": 0.82}).startswith("good")
    # With an interval, the words are decided by what the interval allows.
    assert "interval includes chance" in skill_words({"auroc": 0.61, "auroc_ci": [0.48, 0.73]})
    assert skill_words({"auroc": 0.82, "auroc_ci": [0.74, 0.89]}).startswith("moderate")
    near = skill_words({"auroc": 0.74, "auroc_ci": [0.58, 0.86]})  # above chance, not by much at worst
    assert "down to 0.58, near chance" in near and "great caution" in near
    assert "not measured" in skill_words({})


def test_skill_text_reads_the_intervals_from_the_manifest(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(MODELS_DIR, models, ignore=shutil.ignore_patterns("*.keras"))
    raw = json.loads((models / "manifest.json").read_text())
    entry = raw["models"]["fracture_shoulder"]
    entry["metrics"]["auroc_ci"] = [0.45, 0.69]
    (models / "manifest.json").write_text(json.dumps(raw))
    manifest = load_manifest(models, verify=False)
    text = skill_text(manifest, "shoulder")
    assert f"AUROC {entry['metrics']['auroc']:.2f} (95% interval 0.45-0.69)" in text
    assert "interval includes chance (0.5); this verdict carries little information" in text
    # The shipped manifest, with or without intervals, reads either way.
    shipped = load_manifest(MODELS_DIR, verify=False)
    has_interval = "auroc_ci" in shipped.entries["fracture_shoulder"].info["metrics"]
    assert ("95% interval" in skill_text(shipped, "shoulder")) == has_interval


def test_heatmap_legend_says_which_kind_of_map_it_is():
    from app.diagnosis.value import ACTIVATION_MAP, FRACTURE_MAP
    from app.words import heatmap_legend

    assert heatmap_legend(FRACTURE_MAP)[:2] == ("0", "1") and "probability" in heatmap_legend(FRACTURE_MAP)[2]
    assert heatmap_legend(ACTIVATION_MAP)[:2] == ("weak", "strong") and "relative" in heatmap_legend(ACTIVATION_MAP)[2]


def test_confidence_is_worded_rounded_down_like_the_decision():
    from app.words import confidence_text

    assert confidence_text(0.899) == "89%" and confidence_text(0.9) == "90%" and confidence_text(0.3299) == "32%"
