"""Shared bits of the benchmarks: real images, memory, machine description."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA_DIR = REPO.parent / "shared" / "data" / "xray"


def real_images(count: int, split: str = "val") -> list[Path]:
    """The first `count` readable images of a split, all parts, in manifest order."""
    from app.errors import XRayReadError
    from app.xray import read_xray

    chosen = []
    with (DATA_DIR / "manifest.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["split"] != split:
                continue
            path = DATA_DIR / row["path"]
            try:
                read_xray(path)
            except XRayReadError:
                continue
            chosen.append(path)
            if len(chosen) == count:
                break
    return chosen


def rss_mb() -> float:
    """Current resident memory of this process, from /proc (Linux)."""
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write_json(path: str | None, figures: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(figures, indent=2) + "\n")
