"""`bonefrac-train`: retrain and evaluate the models the app loads.

bonefrac-train all       --data ../shared/data/xray      # trunk + part + fracture heads
bonefrac-train part      --data ...                      # body-part model alone
bonefrac-train fracture  --part elbow --data ...         # one part's fracture model
bonefrac-train evaluate  --data ...                      # re-measure the shipped models
bonefrac-train recipe    [RECIPE.toml]                   # next unfinished stage of a staged recipe

A training run publishes into <run-dir>/models unless told otherwise: replacing the shipped
models is asked for by name (`--models-dir models`, as `make models` does).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import platformdirs

from app.diagnosis.manifest import MANIFEST_NAME, load_manifest
from app.errors import BoneFracError, ModelFilesError
from app.locations import shipped_models_dir
from training.history import val_losses
from training.recipe import (
    EXIT_MORE_STAGES,
    SHIPPED_RECIPE,
    load_recipe,
    progress,
    run_next_stage,
    stage_states,
    status_lines,
)

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "xray"
SHIPPED_MODELS = shipped_models_dir()
# Shared by all runs: the cache is keyed by the image list, size and preprocessing version.
DEFAULT_CACHE = platformdirs.user_cache_path("bonefrac") / "images"
# Publishing and evaluating measure (scikit-learn) and draw (matplotlib): the `train` extra.
TRAIN_EXTRA = {"scikit-learn": "sklearn", "matplotlib": "matplotlib"}
INSTALL_HINT = 'pip install "bonefrac[train]" (or make install-dev)'
EXIT_USAGE = 2
# TensorFlow's C++ INFO lines at import (oneDNN, CPU features) and absl's preamble before them.
_TF_INFO_LINE = re.compile(r"I\d{4} |WARNING: All log messages before absl::InitializeLog|To enable the following")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default in --help; an option whose default is None or empty says what
    that means in its own help text instead of '(default: None)'."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bonefrac-train",
        description="Train and evaluate bonefrac models.",
        epilog="Publishing and evaluate need the train extra: " + INSTALL_HINT,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("all", "train the shared ResNet-50 trunk with the body-part and all fracture heads"),
        ("part", "train a body-part model with its own trunk"),
        ("fracture", "train one part's fracture model with its own trunk"),
    ):
        command = commands.add_parser(name, help=help_text, description=help_text, formatter_class=_HelpFormatter)
        _add_common(command)
        command.add_argument("--input-size", type=int, default=96, help="model input side in pixels")
        command.add_argument("--epochs", type=int, default=20, help="train up to this many epochs in all")
        command.add_argument("--batch-size", type=int, default=32, help="images per training step")
        command.add_argument("--learning-rate", type=float, default=1e-3, help="peak AdamW learning rate")
        command.add_argument(
            "--patience", type=int, default=5, help="stop after this many epochs without a better validation loss"
        )
        command.add_argument(
            "--max-minutes", type=float, default=0.0, help="stop before exceeding this budget (0: no budget)"
        )
        command.add_argument(
            "--init", default="none", help="starting weights: none | imagenet | PATH to a .keras/.weights.h5 file"
        )
        command.add_argument(
            "--strategy",
            default="default",
            choices=("default", "mirrored", "multiworker"),
            help="tf.distribute strategy: several GPUs of one machine (mirrored); multiworker (TF_CONFIG) is refused: "
            "Keras 3 cannot train with it (keras-team/keras#20585)",
        )
        command.add_argument(
            "--precision",
            default="float32",
            choices=("float32", "bfloat16", "auto"),
            help="training arithmetic: float32 (the shipped model), bfloat16 (mixed; 1.3-1.9x faster on CPUs with "
            "AMX, see README), or auto (bfloat16 where the CPU has AMX); models are published in float32",
        )
        command.add_argument(
            "--sources",
            default="",
            help="train and validate on these sources only, comma-separated (e.g. fracatlas,roboflow) (default: all)",
        )
        command.add_argument(
            "--run-dir",
            type=Path,
            default=Path("runs") / name,
            help="checkpoints, history.csv and events.log; rerunning with the same folder resumes",
        )
        command.add_argument(
            "--models-dir",
            type=Path,
            default=None,
            help="publish the model, manifest and figures here (default: <run-dir>/models); "
            "'--models-dir models' replaces the shipped models",
        )
        command.add_argument(
            "--no-publish", action="store_true", help="train only: measure and publish nothing (needs no train extra)"
        )
        if name == "all":
            command.add_argument(
                "--any-head-weight",
                type=float,
                default=0.0,
                help="publish each part's fracture map blended with the all-parts head's: (1-W) part + W any, "
                "cell by cell (0: each part's own head); changes what is published, not what is trained",
            )
            command.add_argument(
                "--average-with",
                type=_paths,
                default=[],
                help="publish the uniform weight average of this run's best model and these model files, "
                "comma-separated (same architecture and input size, e.g. earlier stages of the chain) (default: none)",
            )
        if name == "fracture":
            command.add_argument(
                "--part", required=True, choices=("elbow", "hand", "shoulder"), help="the part's fracture model"
            )
    evaluate = commands.add_parser(
        "evaluate",
        help="measure the models in the models folder on the test split",
        description="Re-measure the models in --models-dir on the test split and rewrite their manifest.",
        formatter_class=_HelpFormatter,
    )
    _add_common(evaluate)
    evaluate.add_argument(
        "--models-dir", type=Path, default=SHIPPED_MODELS, help="the models to measure (their manifest is rewritten)"
    )
    _add_recipe(commands)
    return parser


def _add_recipe(commands: argparse._SubParsersAction) -> None:
    recipe = commands.add_parser(
        "recipe",
        help="run the next unfinished stage of a staged recipe (or resume a stopped one); publish after the last",
        description="Run the first unfinished stage of RECIPE, resuming it where its time budget stopped it, "
        "each stage in its own folder under --runs-dir. Run the same command again for the next stage "
        "(or give --all); when the last stage is finished, its model is published into --models-dir. "
        f"Exit status: 0 once the model is published, {EXIT_MORE_STAGES} while stages remain.",
        formatter_class=_HelpFormatter,
    )
    _add_common(recipe)
    recipe.add_argument(
        "recipe_file",
        nargs="?",
        type=Path,
        default=SHIPPED_RECIPE,
        help="the stages, in TOML: a file, or the name of one shipped with the training package (shipped)",
        metavar="RECIPE",
    )
    recipe.add_argument("--runs-dir", type=Path, default=Path("runs") / "recipe", help="one folder per stage")
    recipe.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="publish the last stage's model here (default: <runs-dir>/models); '--models-dir models' replaces "
        "the shipped models",
    )
    recipe.add_argument("--status", action="store_true", help="list the stages and how far each has run; train nothing")
    recipe.add_argument(
        "--all",
        action="store_true",
        help="run stage after stage, each to its end, until the model is published (make models); "
        "stopped, the same command resumes",
    )
    recipe.set_defaults(no_publish=False)


def _add_common(command: argparse.ArgumentParser) -> None:
    command.add_argument("--data", type=Path, default=DEFAULT_DATA, help="manifest CSV, MURA root or folder tree")
    command.add_argument("--limit", type=int, default=0, help="use at most N images per split (smoke tests; 0: all)")
    command.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="decoded-image cache")
    command.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes that decode images (the cache's first fill)"
    )


def missing_requirements(args: argparse.Namespace) -> list[str]:
    """The packages this command will import and cannot: checked before any work, so a run
    never fails after an epoch for want of a plotting library."""
    if args.command != "evaluate" and args.no_publish:
        return []  # training alone needs only the app's own dependencies
    return [package for package, module in TRAIN_EXTRA.items() if importlib.util.find_spec(module) is None]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "recipe" and args.status:
        return _recipe_status(args)
    missing = missing_requirements(args)
    if missing:
        print(f"error: bonefrac-train {args.command} needs {' and '.join(missing)}: {INSTALL_HINT}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "recipe":
        return _run_recipe(args)
    args.models_dir = models_dir(args)
    problem = publishing_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.command != "evaluate" and not args.no_publish and _same_folder(args.models_dir, SHIPPED_MODELS):
        print(f"publishing over the shipped models in {args.models_dir} (asked for with --models-dir)")
    # TensorFlow's C++ INFO lines are noise: the image-reading processes inherit this setting;
    # in this process it comes too late for those printed at import (filtered there).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    _import_tensorflow_quietly()
    # Our tf.data pipelines shuffle themselves; Keras warns because fit()'s shuffle defaults to True.
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed", category=UserWarning)
    try:
        from training.pipeline import run_command

        status = run_command(args)
    except (ValueError, FileNotFoundError, BoneFracError) as error:  # BoneFracError: models that cannot be used
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: resume with the same command (checkpoints are kept)", file=sys.stderr)
        return 130
    if status == 0:
        print("\n".join(summary_lines(args)))
    return status


def _recipe_status(args: argparse.Namespace) -> int:
    try:
        recipe = load_recipe(args.recipe_file)
        print("\n".join(status_lines(stage_states(recipe.stages, args.runs_dir))))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def _run_recipe(args: argparse.Namespace) -> int:
    """One stage per call: each fits a working session, and the next call goes on."""
    common = ["--data", str(args.data), "--cache-dir", str(args.cache_dir), "--workers", str(args.workers)]
    if args.limit:
        common += ["--limit", str(args.limit)]
    target = args.runs_dir / "models" if args.models_dir is None else args.models_dir
    data = {"data": str(args.data.resolve()), "limit": args.limit}
    try:
        recipe = load_recipe(args.recipe_file)
        before = progress(stage_states(recipe.stages, args.runs_dir, data))
        while True:
            status = run_next_stage(recipe, args.runs_dir, target, common, train=main, data=data)
            if status != EXIT_MORE_STAGES:
                return status
            if not args.all:
                print("run the same command again for the next stage (or give --all)")
                return status
            after = progress(stage_states(recipe.stages, args.runs_dir, data))
            if after == before:
                print("error: the stage trained no epoch: raise its max_minutes", file=sys.stderr)
                return 1
            before = after
            _free_training_memory()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


def _free_training_memory() -> None:
    """Between stages of one process: the last stage's graphs and weights are not needed again."""
    import keras

    keras.backend.clear_session()


def _paths(text: str) -> list[Path]:
    """A comma-separated list of files."""
    return [Path(name.strip()) for name in text.split(",") if name.strip()]


def publishing_problem(args: argparse.Namespace) -> str | None:
    """Why a part or fracture run could not publish where asked, found before any work: such a
    model replaces one entry of a complete set of models, so the folder must hold one."""
    weight = getattr(args, "any_head_weight", 0.0)
    if not 0.0 <= weight <= 1.0:
        return f"--any-head-weight {weight}: must be between 0 and 1"
    missing = [str(path) for path in getattr(args, "average_with", []) if not path.is_file()]
    if missing:
        return f"--average-with: no model file {', '.join(missing)}"
    if args.command not in ("part", "fracture") or args.no_publish:
        return None
    if not (args.models_dir / MANIFEST_NAME).is_file():
        return (
            f"bonefrac-train {args.command} replaces one entry of a complete set of models, and {args.models_dir} "
            f"has no {MANIFEST_NAME}: publish into a copy of the shipped models (--models-dir DIR) or over them "
            "(--models-dir models)"
        )
    try:
        load_manifest(args.models_dir, verify=False)
    except ModelFilesError as error:
        return str(error)
    return None


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow without the INFO lines it prints at import (oneDNN, twice): TensorFlow
    honours TF_CPP_MIN_LOG_LEVEL for them only when it was set before the process started.
    Everything else written to stderr meanwhile (warnings, errors) is passed on."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not _TF_INFO_LINE.match(line):
                    sys.stderr.write(line)


def models_dir(args: argparse.Namespace) -> Path:
    """Where a run publishes: its own folder unless --models-dir names another (models/ only then)."""
    return args.run_dir / "models" if args.models_dir is None else args.models_dir


def _same_folder(first: Path, second: Path) -> bool:
    return first.resolve() == second.resolve()


def summary_lines(args: argparse.Namespace) -> list[str]:
    """What a run ends with: its best epoch and, once measured, the validation figures
    (what runs are compared on; the test figures are in the manifest and the card)."""
    lines = []
    if args.command != "evaluate":
        lines.append(_best_epoch(args.run_dir / "history.csv"))
        if args.no_publish:
            return lines
    manifest = json.loads((args.models_dir / "manifest.json").read_text(encoding="utf-8"))
    lines.append(f"validation figures of model {manifest['model_version']} ({args.models_dir / 'manifest.json'}):")
    for name, entry in manifest["models"].items():
        validation = entry.get("validation") or {}
        figure = _figure(validation, "accuracy" if name == "body_part" else "auroc")
        lines.append(f"  {name}: {figure} on {validation.get('images', '?')} images")
    return lines


def _figure(validation: dict, key: str) -> str:
    """'auroc 0.713 (95% CI 0.636-0.788)': a figure with its interval where the manifest has one."""
    value = validation.get(key)
    if value is None:
        return f"{key} not measured"
    interval = validation.get(f"{key}_ci")
    return f"{key} {value:.3f}" + (f" (95% CI {interval[0]:.3f}-{interval[1]:.3f})" if interval else "")


def _best_epoch(history: Path) -> str:
    losses = val_losses(history)
    if not losses:
        return "no epoch finished"
    best = min(range(len(losses)), key=losses.__getitem__)
    return f"best epoch {best + 1} of {len(losses)}: validation loss {losses[best]:.4f}"


if __name__ == "__main__":
    sys.exit(main())
