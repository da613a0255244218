"""`bonefrac-train`: retrain and evaluate the models the app loads.

bonefrac-train all       --data ../shared/data/xray      # trunk + part + fracture heads
bonefrac-train part      --data ...                      # body-part model alone
bonefrac-train fracture  --part elbow --data ...         # one part's fracture model
bonefrac-train evaluate  --data ...                      # re-measure the shipped models
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "xray"
DEFAULT_MODELS = Path(__file__).resolve().parent.parent / "models"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bonefrac-train", description="Train and evaluate bonefrac models.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("all", "train the shared ResNet-50 trunk with the body-part and all fracture heads"),
        ("part", "train a body-part model with its own trunk"),
        ("fracture", "train one part's fracture model with its own trunk"),
    ):
        command = commands.add_parser(name, help=help_text)
        _add_common(command)
        command.add_argument("--input-size", type=int, default=96, help="model input side in pixels")
        command.add_argument("--epochs", type=int, default=20)
        command.add_argument("--batch-size", type=int, default=32)
        command.add_argument("--learning-rate", type=float, default=1e-3)
        command.add_argument("--patience", type=int, default=5, help="early stopping on validation loss")
        command.add_argument("--max-minutes", type=float, default=0.0, help="stop before exceeding this budget")
        command.add_argument("--init", default="none", help="none | imagenet | PATH to a .keras/.weights.h5 file")
        command.add_argument("--strategy", default="default", choices=("default", "mirrored", "multiworker"))
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
            help="train and validate on these sources only, comma-separated (e.g. fracatlas,roboflow); default: all",
        )
        if name == "all":
            command.add_argument(
                "--fracture-canvas",
                type=int,
                default=0,
                help="train the fracture heads on --input-size crops, around the data's fracture boxes, of the "
                "image at this size (e.g. 320); the app then finds the most suspicious window. 0: whole images",
            )
        command.add_argument("--run-dir", type=Path, default=Path("runs") / name, help="checkpoints and logs")
        command.add_argument("--no-publish", action="store_true", help="do not write into the models folder")
        if name == "fracture":
            command.add_argument("--part", required=True, choices=("elbow", "hand", "shoulder"))
    evaluate = commands.add_parser("evaluate", help="measure the models in the models folder on the test split")
    _add_common(evaluate)
    return parser


def _add_common(command: argparse.ArgumentParser) -> None:
    command.add_argument("--data", type=Path, default=DEFAULT_DATA, help="manifest CSV, MURA root or folder tree")
    command.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS)
    command.add_argument("--limit", type=int, default=0, help="use at most N images per split (smoke tests)")
    command.add_argument("--cache-dir", type=Path, default=Path(".cache"), help="decoded-image cache")
    command.add_argument("--workers", type=int, default=os.cpu_count() or 1)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from training.pipeline import run_command

        return run_command(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: resume with the same command (checkpoints are kept)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
