"""A model recipe: training stages run one at a time, each resumable, each within a time slot.

A recipe (TOML) lists stages in order; each stage is one `bonefrac-train all` run in its own
folder under --runs-dir, starting from the weights of an earlier stage. `bonefrac-train recipe`
runs the first unfinished stage (resuming it when its time budget stopped it) and, when the
last stage is finished, publishes its model. So a recipe longer than one sitting is rebuilt by
running the same command again until it says every stage is done.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from app.atomic import write_text_atomic
from training.history import read_history

DATA_MARKER = "recipe_data.json"  # in each stage folder: the images it was trained on
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
SHIPPED_RECIPE = RECIPES_DIR / "shipped.toml"
# One stage must fit a working session with room to spare (measured epochs vary with load).
MAX_STAGE_MINUTES = 150.0
# Settings that make a stage what it is: a run folder made with other values is another stage.
# (epochs may be lowered when the finished stage is published; the budget may change freely.)
PRECISIONS = ("float32", "bfloat16", "auto")
IDENTITY_KEYS = ("input_size", "learning_rate", "batch_size", "patience", "precision", "sources", "init")


@dataclass(frozen=True)
class Stage:
    name: str
    input_size: int
    epochs: int
    learning_rate: float
    max_minutes: float
    init: str = "none"  # none | imagenet | an earlier stage's name | a model file
    patience: int = 5
    batch_size: int = 32
    precision: str = "float32"
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    stages: list[Stage]
    # [publish] table: how the last stage's model is published (not how it is trained).
    any_head_weight: float = 0.0
    average: tuple[str, ...] = ()  # earlier stages whose weights are averaged with the last's

    def publish_arguments(self, runs_dir: Path) -> list[str]:
        arguments = ["--any-head-weight", repr(self.any_head_weight)] if self.any_head_weight else []
        if self.average:
            arguments += ["--average-with", ",".join(str(best_model_of(runs_dir, name)) for name in self.average)]
        return arguments


@dataclass(frozen=True)
class StageState:
    stage: Stage
    run_dir: Path
    started: bool
    finished: bool
    epochs_run: int


def best_model_of(runs_dir: Path, stage_name: str) -> Path:
    """The model a stage's run leaves for the next stage and for publishing."""
    return runs_dir / stage_name / "best.keras"


def find_recipe(name_or_path: Path) -> Path:
    """A recipe file, or the name of one shipped with the training package ("shipped")."""
    shipped = RECIPES_DIR / f"{name_or_path}.toml"
    if not name_or_path.exists() and name_or_path.parent == Path(".") and shipped.is_file():
        return shipped
    return name_or_path


def load_recipe(path: Path) -> Recipe:
    """The recipe's stages and publishing settings, checked: a mistake is found before hours of
    training, not after."""
    path = find_recipe(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no recipe file {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"recipe {path} is not valid TOML: {error}") from None
    defaults = raw.get("defaults", {})
    tables = raw.get("stage", [])
    if not isinstance(tables, list) or not tables:
        raise ValueError(f"recipe {path} has no [[stage]] tables")
    known = {f.name for f in fields(Stage)}
    stages: list[Stage] = []
    for number, table in enumerate(tables, start=1):
        values = {**defaults, **table}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"recipe {path}, stage {number}: unknown setting {', '.join(unknown)}")
        missing = sorted(f.name for f in fields(Stage) if f.name not in values and f.default is MISSING)
        if missing:
            raise ValueError(f"recipe {path}, stage {number}: missing setting {', '.join(missing)}")
        wrong = [key for key, value in values.items() if not _of_type(value, FIELD_TYPES[key])]
        if wrong:
            raise ValueError(f"recipe {path}, stage {number}: wrong type for {', '.join(sorted(wrong))}")
        stage = Stage(**{**values, "sources": tuple(values.get("sources", ()))})
        _check_stage(path, number, stage, [s.name for s in stages])
        stages.append(stage)
    return _with_publish_settings(path, stages, raw.get("publish", {}))


def _with_publish_settings(path: Path, stages: list[Stage], table: Any) -> Recipe:
    if not isinstance(table, dict) or set(table) - {"any_head_weight", "average"}:
        raise ValueError(f"recipe {path}: [publish] takes only any_head_weight and average")
    weight = table.get("any_head_weight", 0.0)
    if not _of_type(weight, (int, float)) or not 0 <= weight <= 1:
        raise ValueError(f"recipe {path}: [publish] any_head_weight must be a number from 0 to 1")
    average = table.get("average", [])
    earlier = [stage.name for stage in stages[:-1]]
    if not _of_type(average, (list,)) or len(set(average)) < len(average) or set(average) - set(earlier):
        raise ValueError(f"recipe {path}: [publish] average must list earlier stages (not the last), each once")
    return Recipe(stages=stages, any_head_weight=float(weight), average=tuple(average))


# What TOML must give for each setting (an int is a fine float; a bool is no number).
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "init": (str,),
    "precision": (str,),
    "input_size": (int,),
    "epochs": (int,),
    "patience": (int,),
    "batch_size": (int,),
    "learning_rate": (int, float),
    "max_minutes": (int, float),
    "sources": (list,),
}
STAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def _of_type(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) or not isinstance(value, types):
        return False
    return not isinstance(value, list) or all(isinstance(item, str) for item in value)


def _check_stage(path: Path, number: int, stage: Stage, earlier: list[str]) -> None:
    where = f"recipe {path}, stage {number} ({stage.name})"
    if not STAGE_NAME.fullmatch(stage.name) or stage.name == "models":
        raise ValueError(f"{where}: a stage name is letters, digits, - and _ (and not 'models', the publish folder)")
    if stage.name in earlier:
        raise ValueError(f"{where}: the name is used by an earlier stage")
    if not 0 < stage.max_minutes <= MAX_STAGE_MINUTES:
        raise ValueError(f"{where}: max_minutes must be above 0 and at most {MAX_STAGE_MINUTES:.0f}")
    if stage.epochs < 1 or stage.input_size < 32 or stage.learning_rate <= 0:
        raise ValueError(f"{where}: epochs >= 1, input_size >= 32 and learning_rate > 0 are needed")
    if stage.precision not in PRECISIONS:
        raise ValueError(f"{where}: precision must be one of {', '.join(PRECISIONS)}")
    if _is_stage_name(stage.init) and stage.init not in earlier:
        raise ValueError(f"{where}: init '{stage.init}' is no earlier stage (nor none, imagenet or a file)")


def stage_states(stages: list[Stage], runs_dir: Path, data: dict[str, Any] | None = None) -> list[StageState]:
    """How far each stage has run. `data` (what the images are: folder and --limit) is checked
    against what each started stage was trained on, when given."""
    states: list[StageState] = []
    for stage in stages:
        run_dir = runs_dir / stage.name
        record = _read_json(run_dir / "record.json")
        config = _read_json(run_dir / "config.json")
        if config is not None:
            _check_same_settings(stage, run_dir, config)
            _check_same_data(stage, run_dir, data)
            _check_same_start(stage, run_dir, record, {s.stage.name: s for s in states})
        finished = bool(
            record
            and record.get("finished")
            and (record.get("stopped_by") == "early stopping" or record.get("epochs_run", 0) >= stage.epochs)
            and best_model_of(runs_dir, stage.name).is_file()
        )
        states.append(
            StageState(stage=stage, run_dir=run_dir, started=config is not None, finished=finished,
                        epochs_run=_epochs_in_history(run_dir))
        )  # fmt: skip
    return states


def _epochs_in_history(run_dir: Path) -> int:
    """Epochs trained so far, an interrupted run's included (its record is written at the end)."""
    return len(read_history(run_dir / "history.csv"))


def _check_same_data(stage: Stage, run_dir: Path, data: dict[str, Any] | None) -> None:
    """A smoke run (--limit) or another data folder must never pass for a stage of the real one."""
    if data is None:
        return
    marker = run_dir / DATA_MARKER
    found = _read_json(marker)
    if found is None:
        write_text_atomic(marker, json.dumps(data, indent=2))
    elif found != data:
        raise ValueError(
            f"stage {stage.name} in {run_dir} was trained on {_data_words(found)}, this call asks for "
            f"{_data_words(data)}: use another --runs-dir, or delete that folder to train the stage again"
        )


def _data_words(data: dict[str, Any]) -> str:
    limit = f", at most {data['limit']} images per split" if data.get("limit") else ""
    return f"{data.get('data')}{limit}"


def _check_same_start(
    stage: Stage, run_dir: Path, record: dict[str, Any] | None, earlier: dict[str, StageState]
) -> None:
    """A stage trained from an earlier stage's model that has since been trained again is stale."""
    if record is None or stage.init not in earlier:
        return
    source = _read_json(earlier[stage.init].run_dir / "record.json") or {}
    if record.get("stages", [])[:-1] != source.get("stages"):
        raise ValueError(
            f"stage {stage.name} in {run_dir} started from an earlier model of stage {stage.init}, which has "
            "been trained again since: delete that folder to train the stage again"
        )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path} ({error}): delete that stage's folder to run it again") from None


def _check_same_settings(stage: Stage, run_dir: Path, config: dict[str, Any]) -> None:
    """A stage folder trained with other settings must not be taken for this stage."""
    expected = stage_config(stage, run_dir.parent)
    for key in IDENTITY_KEYS:
        found = config.get(key)
        found = tuple(found) if isinstance(found, list) else found
        if key == "precision" and stage.precision == "auto":
            continue  # either, depending on the CPU it ran on
        if key == "init" and _is_stage_name(stage.init):
            # By the stage folder's name: the runs folder may be written another way (relative,
            # absolute) from one call to the next.
            same = Path(str(found)).parent.name == stage.init
        else:
            same = found == expected[key]
        if not same:
            raise ValueError(
                f"stage {stage.name} in {run_dir} was trained with {key} {found!r}, the recipe says "
                f"{expected[key]!r}: delete that folder to train the stage again"
            )


def _is_stage_name(init: str) -> bool:
    return init not in ("none", "imagenet") and bool(STAGE_NAME.fullmatch(init)) and not init.endswith(".keras")


def stage_config(stage: Stage, runs_dir: Path) -> dict[str, Any]:
    """The stage's settings as TrainConfig will record them."""
    init = str(best_model_of(runs_dir, stage.init)) if _is_stage_name(stage.init) else stage.init
    return {
        "input_size": stage.input_size,
        "learning_rate": stage.learning_rate,
        "batch_size": stage.batch_size,
        "patience": stage.patience,
        "precision": {"bfloat16": "mixed_bfloat16"}.get(stage.precision, stage.precision),  # the Keras policy
        "sources": tuple(sorted(stage.sources)),
        "init": init,
    }


def stage_arguments(stage: Stage, runs_dir: Path, epochs: int) -> list[str]:
    """The `bonefrac-train all` arguments that run the stage (without data, publishing options)."""
    config = stage_config(stage, runs_dir)
    arguments = [
        "all",
        "--input-size", str(stage.input_size),
        "--epochs", str(epochs),
        "--learning-rate", repr(stage.learning_rate),
        "--patience", str(stage.patience),
        "--batch-size", str(stage.batch_size),
        "--max-minutes", repr(stage.max_minutes),
        "--precision", stage.precision,
        "--init", config["init"],
        "--run-dir", str(runs_dir / stage.name),
    ]  # fmt: skip
    if stage.sources:
        arguments += ["--sources", ",".join(stage.sources)]
    return arguments


def status_lines(states: list[StageState]) -> list[str]:
    lines = []
    for number, state in enumerate(states, start=1):
        stage = state.stage
        if state.finished:
            word = f"finished ({state.epochs_run} epochs)"
        elif state.started:
            word = f"stopped after {state.epochs_run} of {stage.epochs} epochs: the next run resumes it"
        else:
            word = "not started"
        lines.append(
            f"stage {number} {stage.name}: {stage.input_size} px, {stage.epochs} epochs, lr {stage.learning_rate:g}, "
            f"from {stage.init}, up to {stage.max_minutes:.0f} min: {word}"
        )
    return lines


# Exit status of a call that ran a stage but published nothing yet: not an error, not done either,
# so that a script can tell "models rebuilt" (0) from "call again" (3).
EXIT_MORE_STAGES = 3


def progress(states: list[StageState]) -> tuple[tuple[str, int], ...]:
    """How far the stages have run: a call that leaves this unchanged has made no progress."""
    return tuple((state.stage.name, state.epochs_run) for state in states)


def run_next_stage(
    recipe: Recipe,
    runs_dir: Path,
    models_dir: Path,
    common: list[str],
    train: Callable[[list[str]], int],
    data: dict[str, Any],
) -> int:
    """Run (or resume) the first unfinished stage; publish when the last one is finished.
    Returns 0 once the model is published, EXIT_MORE_STAGES while stages remain.
    `common`: the data options passed to every run; `data`: what they mean, kept in each stage
    folder so that a stage trained on other images is never taken for this one."""
    stages = recipe.stages
    states = stage_states(stages, runs_dir, data)
    pending = [state for state in states if not state.finished]
    if pending:
        state = pending[0]
        if _is_stage_name(state.stage.init):
            print(f"stage {state.stage.name} starts from stage {state.stage.init}'s model")
        print(("resuming" if state.started else "running") + f" stage {state.stage.name}")
        state.run_dir.mkdir(parents=True, exist_ok=True)
        _check_same_data(state.stage, state.run_dir, data)  # a new stage: marks its folder
        status = train([*stage_arguments(state.stage, runs_dir, state.stage.epochs), *common, "--no-publish"])
        if status != 0:
            return status
        states = stage_states(stages, runs_dir, data)
        if not states[-1].finished:
            left = [s.stage.name for s in states if not s.finished]
            print(f"stages still to run: {', '.join(left)}")
            return EXIT_MORE_STAGES
    last = states[-1]
    if (models_dir / "manifest.json").is_file() and _published_from(models_dir, last.run_dir, recipe):
        print(f"every stage is finished; its model is published in {models_dir}")
        return 0
    # Published with the epochs the stage ran, so that nothing trains again (an early-stopped
    # stage asked for more epochs than it ran).
    print(f"every stage is finished: publishing stage {last.stage.name}'s model into {models_dir}")
    publishing = [*common, *recipe.publish_arguments(runs_dir), "--models-dir", str(models_dir)]
    return train([*stage_arguments(last.stage, runs_dir, last.epochs_run), *publishing])


def _published_from(models_dir: Path, run_dir: Path, recipe: Recipe) -> bool:
    """The manifest in models_dir was published from this run (same settings, same stages and
    times) and the way the recipe publishes it."""
    manifest = _read_json(models_dir / "manifest.json") or {}
    record = _read_json(run_dir / "record.json") or {}
    published = manifest.get("models", {}).get("body_part", {}).get("trained_with", {})
    same_run = bool(record) and all(published.get(key) == record.get(key) for key in ("config", "stages"))
    averaged = tuple(Path(file).parent.name for file in published.get("averaged_with", []))
    return same_run and published.get("any_head_weight", 0.0) == recipe.any_head_weight and averaged == recipe.average
