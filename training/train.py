"""Fit the multi-task model: tf.data input, augmentation, checkpoints, resume, early stop."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from app.atomic import write_bytes_atomic, write_text_atomic
from training.data import Sample
from training.history import read_history, val_losses
from training.model import FRACTURE_HEADS, MAP_STRIDE, as_float32, build_model
from training.targets import (
    box_masks,
    cells_known,
    fracture_map_loss,
    fracture_targets,
    masked_fracture_loss,
    region_targets,
    weighted_region_loss,
)


@dataclass
class TrainConfig:
    task: str = "all"  # all | part | fracture
    part: str | None = None  # with task "fracture": elbow | hand | shoulder
    input_size: int = 96
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    init: str = "none"
    patience: int = 5
    max_minutes: float = 0.0  # 0 = no time budget
    seed: int = 1234
    strategy: str = "default"  # default | mirrored | multiworker
    precision: str = "float32"  # float32 | mixed_bfloat16 (see resolve_precision)
    sources: tuple[str, ...] = ()  # empty = every source in the data
    map_loss_weight: float = 1.0  # the box-supervised fracture map's loss, beside the image losses


def resolve_precision(choice: str) -> str:
    """The Keras policy for --precision. With "auto", mixed bfloat16 where the CPU has AMX
    bfloat16 units (measured 1.3x faster at 96 px, 1.9x at 128 px on this project's Xeon,
    bench/train_speed.py); elsewhere bfloat16 may be emulated and slow, so float32."""
    if choice != "auto":
        return {"bfloat16": "mixed_bfloat16"}.get(choice, choice)
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "float32"
    return "mixed_bfloat16" if " amx_bf16" in flags else "float32"


class WallClock(keras.callbacks.Callback):
    """Training time summed over every process of a run (interrupted runs resume), kept in
    <run-dir>/wallclock.json so the published duration covers all epochs."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.before = json.loads(path.read_text())["seconds"] if path.exists() else 0.0
        self.started = time.monotonic()

    @property
    def seconds(self) -> float:
        return self.before + time.monotonic() - self.started

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        write_text_atomic(self.path, json.dumps({"seconds": round(self.seconds, 1)}))


class TimeBudget(keras.callbacks.Callback):
    """Stop before an epoch would overrun the budget (the rebuild must fit a wall-clock slot)."""

    def __init__(self, minutes: float) -> None:
        super().__init__()
        self.seconds = minutes * 60.0
        self.started = time.monotonic()
        self.epoch_started = self.started
        self.stopped = False

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = time.monotonic()
        if now + (now - self.epoch_started) - self.started > self.seconds:
            print(f"\ntime budget of {self.seconds / 60:.0f} min reached: stopping after epoch {epoch + 1}")
            self.model.stop_training = True
            self.stopped = True


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping on the validation loss that, when a run resumes, goes on counting from the
    epochs in its history.csv: where a time budget split a stage must not change when it stops."""

    def __init__(self, history: Path, patience: int) -> None:
        super().__init__(monitor="val_loss", patience=patience, restore_best_weights=True)
        self.history = history

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        losses = val_losses(self.history)
        if losses:
            best_epoch = int(np.argmin(losses))
            self.best, self.best_epoch = losses[best_epoch], best_epoch
            self.wait = len(losses) - 1 - best_epoch


def _best_val_loss_so_far(run_dir: Path) -> float | None:
    """On resume, the best checkpoint on disk must only be replaced by a better one."""
    if not (run_dir / BEST_WEIGHTS).is_file():
        return None
    losses = val_losses(run_dir / "history.csv")
    return min(losses) if losses else None


# The best epoch's layer weights (no optimizer state, a third of a full checkpoint: resuming
# uses backup/), and the inference model written from them at the end of a run, which
# `--init` and publishing read.
BEST_WEIGHTS = "best_weights.npz"
BEST_MODEL = "best.keras"


class BestWeights(keras.callbacks.Callback):
    """Keep the layer weights of the epoch with the lowest validation loss, written atomically."""

    def __init__(self, path: Path, best_so_far: float | None) -> None:
        super().__init__()
        self.path = path
        self.best = np.inf if best_so_far is None else best_so_far

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("val_loss")
        if loss is None or not loss < self.best:
            return
        self.best = float(loss)
        buffer = io.BytesIO()
        np.savez(buffer, *self.model.get_weights())
        write_bytes_atomic(self.path, buffer.getvalue())


def load_best_weights(model: keras.Model, path: Path) -> None:
    with np.load(path) as stored:
        model.set_weights([stored[f"arr_{i}"] for i in range(len(stored.files))])


def keras_verbosity() -> int:
    """A progress bar on a terminal; one plain line per epoch in a redirected log."""
    return 1 if sys.stdout.isatty() else 2


# Tried on 2026-11-29 with two workers on loopback ports (TF_CONFIG): Keras 3's fit first
# averages a nested data batch across workers, which MultiWorkerMirroredStrategy cannot reduce,
# and then reduces scalar logs along an axis they lack (keras-team/keras#20585, open).
MULTIWORKER_UNSUPPORTED = (
    "--strategy multiworker: Keras 3's model.fit cannot train with TensorFlow's MultiWorkerMirroredStrategy "
    "(keras-team/keras#20585); train on one machine (--strategy mirrored uses all its GPUs)"
)


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        raise ValueError(MULTIWORKER_UNSUPPORTED)
    return tf.distribute.get_strategy()


def geometric_augmenter(seed: int) -> keras.Sequential:
    """Moves pixels: applied to the image and its box mask together, so the boxes follow."""
    # Radiographs come mirrored, slightly rotated, zoomed and shifted.
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(0.05, fill_mode="constant", seed=seed),
            keras.layers.RandomZoom((-0.15, 0.15), fill_mode="constant", seed=seed),
            keras.layers.RandomTranslation(0.06, 0.06, fill_mode="constant", seed=seed),
        ],
        name="augment_geometry",
    )


def exposure_augmenter(seed: int) -> keras.Sequential:
    """Changes grey levels only: applied to the image, never to the mask."""
    return keras.Sequential(
        [
            keras.layers.RandomContrast(0.25, seed=seed),
            keras.layers.RandomBrightness(0.15, value_range=(0.0, 1.0), seed=seed),
        ],
        name="augment_exposure",
    )


def make_dataset(pixels: np.ndarray, samples: list[Sample], config: TrainConfig, training: bool) -> tf.data.Dataset:
    """Batches of (image, targets); the map targets come from the box mask after augmentation."""
    heads = FRACTURE_HEADS if config.task == "all" else ((config.part,) if config.task == "fracture" else ())
    fracture = fracture_targets(samples, heads=heads)
    # Per image and head, the weight of its cells: the fracture weight where every cell is known.
    cell_weights = fracture[:, len(FRACTURE_HEADS) :] * cells_known(samples)[:, np.newaxis]
    labels = {"region": region_targets(samples, train_parts=config.task in ("all", "part")), "fracture": fracture}
    dataset = tf.data.Dataset.from_tensor_slices((pixels, box_masks(samples, config.input_size), labels, cell_weights))
    if training:
        dataset = dataset.shuffle(len(samples), seed=config.seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(config.batch_size)
    geometry, exposure = geometric_augmenter(config.seed), exposure_augmenter(config.seed)

    def prepare(images, masks, y, weights):
        both = tf.cast(tf.stack([images, masks], axis=-1), tf.float32) / 255.0
        if training:
            both = geometry(both, training=True)
        image, mask = both[..., :1], both[..., 1:]
        if training:
            image = tf.clip_by_value(exposure(image, training=True), 0.0, 1.0)
        # A cell is inside a box when any of its pixels is (after interpolation, over half-way).
        cells = tf.cast(tf.nn.max_pool2d(mask, MAP_STRIDE, MAP_STRIDE, "VALID") > 0.5, tf.float32)
        grid = tf.shape(cells)[1]
        cell_labels = tf.tile(cells, [1, 1, 1, len(FRACTURE_HEADS)])
        cell_weights = tf.tile(weights[:, tf.newaxis, tf.newaxis, :], [1, grid, grid, 1])
        return image, {**y, "fracture_map": tf.concat([cell_labels, cell_weights], axis=-1)}

    return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def compile_model(model: keras.Model, config: TrainConfig, steps_per_epoch: int) -> None:
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * 0.1,
        decay_steps=max(1, config.epochs * steps_per_epoch),
        warmup_target=config.learning_rate,
        warmup_steps=steps_per_epoch,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay),
        loss={
            "region": weighted_region_loss,
            "part": None,  # the regions summed: trained through the region head
            "fracture": masked_fracture_loss,
            "fracture_map": fracture_map_loss,
        },
        loss_weights={"region": 1.0, "part": 0.0, "fracture": 1.0, "fracture_map": config.map_loss_weight},
    )


def train(
    train_pixels: np.ndarray,
    train_samples: list[Sample],
    val_pixels: np.ndarray,
    val_samples: list[Sample],
    config: TrainConfig,
    run_dir: Path,
) -> tuple[keras.Model, dict]:
    """Train and return the best model (lowest validation loss) and a record of the run."""
    # First of all: a multi-worker strategy configures TensorFlow's collective ops, which must
    # happen before any other TensorFlow work in the process.
    strategy = make_strategy(config.strategy)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.json", json.dumps(asdict(config), indent=2))
    keras.utils.set_random_seed(config.seed)
    train_data = make_dataset(train_pixels, train_samples, config, training=True)
    val_data = make_dataset(val_pixels, val_samples, config, training=False)
    steps = int(np.ceil(len(train_samples) / config.batch_size))
    keras.mixed_precision.set_global_policy(config.precision)
    with strategy.scope():
        model = build_model(config.input_size, init=config.init)
        compile_model(model, config, steps)
    wallclock = WallClock(run_dir / "wallclock.json")
    early_stopping = ResumableEarlyStopping(run_dir / "history.csv", config.patience)
    budget = TimeBudget(config.max_minutes) if config.max_minutes > 0 else None
    callbacks = epoch_end_callbacks(run_dir, wallclock, early_stopping, budget)
    try:
        model.fit(
            train_data, validation_data=val_data, epochs=config.epochs, callbacks=callbacks, verbose=keras_verbosity()
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    duration = wallclock.seconds
    best = as_float32(model, config.input_size)  # float32, uncompiled: what is saved and published
    if (run_dir / BEST_WEIGHTS).is_file():
        load_best_weights(best, run_dir / BEST_WEIGHTS)
    # else no epoch gave a finite validation loss: the last weights are all there is.
    partial = run_dir / f".{BEST_MODEL}.tmp.keras"
    best.save(partial)
    os.replace(partial, run_dir / BEST_MODEL)  # --init and publishing never see half a file
    epochs_run = len(read_history(run_dir / "history.csv"))  # all epochs, resumed runs included
    stopped_by = _stopped_by(early_stopping, budget, epochs_run, config.epochs, run_dir)
    record = {
        "config": asdict(config),
        "epochs_run": epochs_run,
        # A run stopped by its time budget is unfinished (rerunning resumes it); one that ran
        # all its epochs, or was stopped early for want of progress, is finished.
        "finished": bool(epochs_run >= config.epochs or stopped_by == "early stopping"),
        "stopped_by": stopped_by,
        "duration_s": round(duration, 1),
        "train_images": len(train_samples),
        "train_items_per_epoch": steps * config.batch_size,
        "val_images": len(val_samples),
        "stages": [*_earlier_stages(config.init), _stage(config, epochs_run, duration)],
    }
    write_text_atomic(run_dir / "record.json", json.dumps(record, indent=2))
    return best, record


def epoch_end_callbacks(
    run_dir: Path, wallclock: WallClock, early_stopping: ResumableEarlyStopping, budget: TimeBudget | None
) -> list[keras.callbacks.Callback]:
    """In the order they run at each epoch's end. The epoch's history row is written before its
    checkpoint: a run stopped between the two repeats the epoch on resume and writes its row
    again (read_history keeps the later one); the other order would lose the row for good."""
    return [
        wallclock,
        BestWeights(run_dir / BEST_WEIGHTS, _best_val_loss_so_far(run_dir)),
        early_stopping,
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: logging.getLogger("bonefrac.training").info(
                "epoch %d: %s", epoch + 1, {k: round(float(v), 4) for k, v in (logs or {}).items()}
            )
        ),
        # Kept after the run too: the same --run-dir resumes an interrupted run or extends a
        # finished one to more --epochs; a new --run-dir starts afresh.
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), delete_checkpoint=False),
        *([budget] if budget else []),
    ]


def _stopped_by(
    early_stopping: keras.callbacks.EarlyStopping,
    budget: TimeBudget | None,
    epochs_run: int,
    epochs: int,
    run_dir: Path,
) -> str | None:
    """Why the run ended before its epochs: early stopping (finished) before the time budget
    (to be resumed). A call that trained nothing (publishing a finished run) keeps the reason
    its record already gave."""
    if early_stopping.stopped_epoch > 0:
        return "early stopping"
    if budget and budget.stopped and epochs_run < epochs:
        return "time budget"
    try:
        earlier = json.loads((run_dir / "record.json").read_text())
    except (OSError, ValueError):
        return None
    return earlier.get("stopped_by") if earlier.get("epochs_run") == epochs_run else None


def _stage(config: TrainConfig, epochs_run: int, duration_s: float) -> dict:
    return {
        "init": config.init,
        "input_size": config.input_size,
        "epochs_run": epochs_run,
        "duration_s": round(duration_s, 1),
        "precision": config.precision,
    }


def _earlier_stages(init: str) -> list[dict]:
    """A run started from another run's checkpoint (--init runs/X/best.keras) or from a
    published model (--init models/bonefrac_resnet50.keras) continues it: the published record
    must count that run's epochs and time as well."""
    if init in ("none", "imagenet"):
        return []
    record = Path(init).parent / "record.json"
    if record.is_file():
        earlier = json.loads(record.read_text())
        return earlier.get("stages") or [
            _stage(TrainConfig(**earlier["config"]), earlier["epochs_run"], earlier["duration_s"])
        ]
    manifest = Path(init).parent / "manifest.json"
    if manifest.is_file():  # a published model: its manifest entry keeps its record
        entries = json.loads(manifest.read_text()).get("models", {}).values()
        trained = next((e["trained_with"] for e in entries if e.get("file") == Path(init).name), {})
        return list(trained.get("stages", []))
    return []
