"""The model card in README.md, rendered from models/manifest.json (never typed by hand).

python -m training.card            # rewrite the card between the README markers
python -m training.card --check    # exit 1 if the README's card differs from the manifest
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.atomic import write_text_atomic
from app.diagnosis.manifest import CHANCE_AUROC, load_manifest
from app.diagnosis.model_card import largest_part_confusions

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- model-card:start -->", "<!-- model-card:end -->"


def _stages(trained: dict[str, Any]) -> str:
    stages = trained.get("stages") or []
    if not stages:
        return ""
    steps = ", then ".join(
        f"{stage['epochs_run']} at {stage['input_size']} px ({stage['precision'].replace('mixed_', 'mixed ')})"
        for stage in stages
    )
    return f" ({steps})"


def _region_errors(by_region: dict[str, dict], shown: int = 4) -> str:
    """The largest body-part confusions, by fine region, e.g. "wrist (other) as hand: 43 of 71"."""
    largest = largest_part_confusions(by_region, shown)
    if not largest:
        return ""
    listed = "; ".join(f"{e.region} ({e.part}) as {e.predicted}: {e.count} of {e.images}" for e in largest)
    return f"- Largest body-part confusions on the test split, by the data's finer region: {listed}."


def _with_ci(figures: dict[str, Any], key: str, percent: bool = False) -> str:
    """A figure and its 95% interval, e.g. "0.812 (0.74-0.87)"."""
    interval = figures.get(f"{key}_ci")
    if figures.get(key) is None or not interval:
        return _fmt(figures.get(key), percent)
    return f"{_fmt(figures.get(key), percent)} ({_fmt(interval[0], percent)}-{_fmt(interval[1], percent)})"


def _pointing(entry) -> str:
    game = entry.info.get("metrics", {}).get("pointing_game")
    if not game or not game.get("images"):
        return "n/a"
    chance = f", chance {_fmt(game['chance'], True)}" if game.get("chance") is not None else ""
    return f"{_with_ci(game, 'rate', True)} of {game['images']}{chance}"


def _sources(trained: dict[str, Any]) -> str:
    sources = trained.get("config", {}).get("sources") or []
    return f" from the {', '.join(sources)} sources only" if sources else ""


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1%}" if percent else f"{value:.3f}"


def render_card(models_dir: Path) -> str:
    manifest = load_manifest(models_dir, verify=False)
    part = manifest.entries["body_part"]
    trained = part.info.get("trained_with", {})
    machine = trained.get("machine", {})
    part_metrics = part.info.get("metrics", {})
    scope = part_metrics.get("scope", {})
    lines = [
        f"Model version `{manifest.version}`. Figures measured on the **test split** of the shared data "
        "(never used for training or for choosing thresholds); thresholds chosen on the validation split. "
        '"Study" figures group images by the data\'s leakage group (a source picture with its augmented copies; '
        "the shared data has no study ids), averaging probabilities as the MURA paper does per study.",
        "",
        f"- Architecture: {trained.get('architecture', 'n/a')}, input {trained.get('input_size')} px, "
        f"initialisation `{trained.get('init')}`.",
        f"- Training: {trained.get('epochs_run', 'n/a')} epochs{_stages(trained)}, "
        f"{trained.get('duration_s', 0) / 60:.0f} min on "
        f"{machine.get('cpu', 'n/a')} ({machine.get('cores', '?')} cores), {trained.get('train_images')} train / "
        f"{trained.get('val_images')} validation images{_sources(trained)}.",
        f"- Body part: accuracy {_with_ci(part_metrics, 'accuracy', True)}, Cohen's kappa "
        f"{_fmt(part_metrics.get('cohen_kappa'))} on {part_metrics.get('images')} test images; images below "
        f"{part.min_confidence:.0%} confidence are refused as not supported "
        f"({_fmt(part_metrics.get('refused_below_min_confidence'), True)} of test images).",
        f"- Not supported: of {scope.get('out_of_scope_images')} test images of other body parts (leg, hip, "
        f"forearm, wrist, humerus, ...), {_fmt(scope.get('out_of_scope_refused'), True)} are refused as not "
        f"supported; of {scope.get('in_scope_images')} elbow/hand/shoulder test images, "
        f"{_fmt(scope.get('in_scope_wrongly_refused'), True)} are wrongly refused. Colour photographs and blank "
        "images are refused before the model by a colourfulness and a contrast check.",
        *filter(None, [_region_errors(part_metrics.get("by_region", {}))]),
        "",
        "Every figure in brackets is a 95% bootstrap interval, resampling whole groups (a patient, or a source "
        "picture with its copies). *Map peak in box*: on fractured test images with boxes, the share whose "
        "most suspicious fracture-map cell overlaps a fracture box (pointing game), beside the share a randomly "
        "chosen cell would reach (chance).",
        "",
        "| fracture model | test images (fractured) | AUROC | study AUROC | rule-out threshold: sensitivity / "
        "specificity | rule-in threshold: sensitivity / specificity | AUROC per source | map peak in box |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("elbow", "hand", "shoulder"):
        entry = manifest.entries[f"fracture_{name}"]
        metrics = entry.info.get("metrics", {})
        out, rule_in = metrics.get("at_rule_out", {}), metrics.get("at_rule_in", {})
        sources = ", ".join(
            f"{source} {_fmt(figures.get('auroc'))} (n={figures.get('images')})"
            for source, figures in metrics.get("per_source", {}).items()
        )
        lines.append(
            f"| {name} | {metrics.get('images')} ({metrics.get('fractured')}) | {_with_ci(metrics, 'auroc')} | "
            f"{_with_ci(metrics.get('study', {}), 'auroc')} | "
            f"{entry.thresholds.rule_out:.2f}: {_with_ci(out, 'sensitivity', True)} / "
            f"{_with_ci(out, 'specificity', True)} | "
            f"{entry.thresholds.rule_in:.2f}: {_with_ci(rule_in, 'sensitivity', True)} / "
            f"{_with_ci(rule_in, 'specificity', True)} | {sources} | {_pointing(entry)} |"
        )
    withheld = [
        f"{name} (validation AUROC {_with_ci(entry.info.get('validation', {}), 'auroc')})"
        for name in ("elbow", "hand", "shoulder")
        if (entry := manifest.entries[f"fracture_{name}"]).verdicts_withheld
    ]
    if withheld:
        lines += [
            "",
            f"**No verdicts from the {', '.join(withheld)} fracture model"
            f"{'s' if len(withheld) > 1 else ''}:** the app answers such images *not supported*, because a "
            f"fracture model gives verdicts only when the 95% interval of its validation AUROC lies above chance "
            f"({CHANCE_AUROC:.2f}); decided on validation, never on test. Its test figures above are what a "
            "verdict would have been.",
        ]
    figures = manifest.raw.get("figures", [])
    if figures:
        lines += ["", "Figures: " + ", ".join(f"[{Path(f).stem}](models/{f})" for f in figures) + "."]
    return "\n".join(lines)


def update_readme(models_dir: Path, readme: Path = REPO / "README.md") -> bool:
    """Rewrite the card; return True when the README changed."""
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no model-card markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{START}\n{render_card(models_dir)}\n{END}{tail}"
    if updated != text:
        write_text_atomic(readme, updated)
    return updated != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.card")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--check", action="store_true", help="fail if the README's card is out of date")
    args = parser.parse_args(argv)
    if args.check:
        text = (REPO / "README.md").read_text(encoding="utf-8")
        current = text.split(START, 1)[1].split(END, 1)[0].strip()
        if current != render_card(args.models_dir).strip():
            print("error: README model card differs from models/manifest.json: run python -m training.card")
            return 1
        return 0
    update_readme(args.models_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
