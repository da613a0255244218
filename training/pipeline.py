"""What each `bonefrac-train` command does, start to finish."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from training.data import Sample, deterministic_subset, load_pixels, load_samples
from training.model import PART_NAMES


def select(samples: list[Sample], split: str, task: str, part: str | None, limit: int) -> list[Sample]:
    chosen = [s for s in samples if s.split == split]
    if task == "part":
        chosen = [s for s in chosen if s.part in PART_NAMES]
    elif task == "fracture":
        chosen = [s for s in chosen if s.part == part]
    return deterministic_subset(chosen, limit)


def parse_sources(text: str) -> tuple[str, ...]:
    return tuple(sorted({name.strip() for name in text.split(",") if name.strip()}))


def only_sources(samples: list[Sample], sources: tuple[str, ...]) -> list[Sample]:
    """The samples of the chosen sources (all when none are chosen); an unknown name is an error."""
    if not sources:
        return samples
    present = sorted({s.source for s in samples})
    unknown = [name for name in sources if name not in present]
    if unknown:
        raise ValueError(f"no images from source {', '.join(unknown)} in the data (it has: {', '.join(present)})")
    return [s for s in samples if s.source in sources]


def run_command(args: argparse.Namespace) -> int:
    if getattr(args, "strategy", None) == "multiworker":
        from training.train import MULTIWORKER_UNSUPPORTED

        raise ValueError(MULTIWORKER_UNSUPPORTED)  # before any image is read
    samples = load_samples(args.data)
    if args.command == "evaluate":
        from training.publish import evaluate_models

        evaluate_models(args.models_dir, samples, args)
        return 0

    from training.train import TrainConfig, resolve_precision, train

    sources = parse_sources(args.sources)
    samples = only_sources(samples, sources)
    config = TrainConfig(
        task=args.command,
        part=getattr(args, "part", None),
        input_size=args.input_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        init=args.init,
        patience=args.patience,
        max_minutes=args.max_minutes,
        strategy=args.strategy,
        precision=resolve_precision(args.precision),
        sources=sources,
    )
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = training_log(run_dir)
    log.info("start %s: data %s, %d images; config %s", config.task, args.data, len(samples), config)
    split_samples = {split: select(samples, split, config.task, config.part, args.limit) for split in ("train", "val")}
    for split, chosen in split_samples.items():
        if not chosen:
            raise ValueError(f"no {split} images for this task in {args.data}")
    pixels = {}
    for split, chosen in split_samples.items():
        pixels[split], split_samples[split] = load_pixels(chosen, config.input_size, args.cache_dir, args.workers)
        log.info("%s: %d images", split, len(split_samples[split]))
    model, record = train(pixels["train"], split_samples["train"], pixels["val"], split_samples["val"], config, run_dir)
    log.info(
        "trained: %d epochs in %.0f s; best checkpoint %s",
        record["epochs_run"],
        record["duration_s"],
        run_dir / "best.keras",
    )
    if args.no_publish:
        print(f"trained model: {Path(args.run_dir) / 'best.keras'} (not published)")
        return 0
    from training.publish import publish

    publish(model, record, samples, args)
    log.info("published into %s", args.models_dir)
    return 0


def training_log(run_dir: Path) -> logging.Logger:
    """Events of a run, appended to <run-dir>/events.log (Keras prints the progress bars)."""
    log = logging.getLogger("bonefrac.training")
    log.setLevel(logging.INFO)
    for handler in list(log.handlers):
        log.removeHandler(handler)
    handler = logging.FileHandler(run_dir / "events.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    return log
