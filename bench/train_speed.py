"""Training throughput of the multi-task ResNet-50 per input size and precision.

    .venv/bin/python bench/train_speed.py [--sizes 96 128] [--json docs/train_speed.json]

Times whole training steps (forward, backward, AdamW update) on batches of real training
images, after one warm-up epoch that compiles the step. This is what chose the input size
and the mixed-bfloat16 default of `bonefrac-train` (`--precision auto`).
Each configuration runs in its own process: the precision policy is global to Keras.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from common import REPO, real_images, write_json

BATCH = 32
STEPS = 10


def measure(size: int, precision: str) -> float:
    """Images per second; runs in a child process."""
    import keras
    import numpy as np

    from app.xray import read_xray, to_model_input
    from training.model import build_model

    keras.mixed_precision.set_global_policy(precision)
    images = np.stack([to_model_input(read_xray(path), size) for path in real_images(BATCH, split="train")])
    x = np.concatenate([images] * STEPS)
    y = {
        "part": np.tile(np.arange(4), len(x) // 4),
        "fracture": np.tile(np.eye(2, 4, dtype="float32"), (len(x) // 2, 1)),
    }
    model = build_model(size)
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3),
        loss={"part": "sparse_categorical_crossentropy", "fracture": "binary_crossentropy", "features": None},
    )
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)  # compiles the step
    started = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0)
    return 2 * len(x) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 128])
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(int(args.child[0]), args.child[1])))
        return
    from app.machine import describe_machine

    rows = []
    for size in args.sizes:
        for precision in ("float32", "mixed_bfloat16"):
            child = subprocess.run(
                [sys.executable, __file__, "--child", str(size), precision],
                capture_output=True,
                text=True,
                check=True,
                cwd=REPO,
            )
            speed = json.loads(child.stdout.strip().splitlines()[-1])
            rows.append({"input_size": size, "precision": precision, "images_per_s": round(speed, 1)})
            print(f"{size:4d} px  {precision:15s} {speed:6.1f} images/s")
    write_json(args.json, {"machine": describe_machine(), "batch_size": BATCH, "results": rows})


if __name__ == "__main__":
    main()
