"""Soak: 1,000 diagnoses in one process; memory must stop growing after warm-up.

python bench/soak.py [--count 1000] [--json PATH]
"""

from __future__ import annotations

import argparse
import time

from common import real_images, rss_mb, write_json

WARM_UP = 50


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from app.diagnosis import Diagnoser
    from app.machine import describe_machine

    images = real_images(100)
    diagnoser = Diagnoser()
    started = time.perf_counter()
    baseline = None
    samples = []
    for index in range(args.count):
        diagnoser.diagnose(images[index % len(images)], with_heatmap=True)
        if index + 1 == WARM_UP:
            baseline = rss_mb()
        if (index + 1) % 100 == 0:
            samples.append(round(rss_mb(), 1))
            print(f"{index + 1} diagnoses, RSS {samples[-1]} MB", flush=True)
    figures = {
        "diagnoses": args.count,
        "soak_rss_growth_mb": round(rss_mb() - baseline, 1),
        "rss_after_warm_up_mb": round(baseline, 1),
        "rss_every_100_mb": samples,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": describe_machine(),
    }
    print(figures)
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
