"""Speed of the things a user waits for, on this machine, on real X-rays.

    python bench/run.py [--json PATH] [--images 50] [--batch 200]

Writes docs/PERFORMANCE.md. Every figure names the machine and the versions. The baseline
is the published design run the published way: separate ResNet-50 models (body part, then
the part's fracture model) loaded as Keras models and called with `model.predict` per
image, built from our own model files, so only the way of running differs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import REPO, real_images, write_json

PERFORMANCE_MD = REPO / "docs" / "PERFORMANCE.md"


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1)


def time_calls(call, items, warm_up: int = 5) -> list[float]:
    for item in items[:warm_up]:
        call(item)
    timings = []
    for item in items:
        started = time.perf_counter()
        call(item)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def baseline_runner(diagnoser):
    """Separate Keras models per role, each `model.predict` per image (two ResNet-50 passes)."""
    import keras

    from app.xray import read_xray, to_model_input

    part_entry = diagnoser.part_entry
    part_model = keras.models.load_model(diagnoser.manifest.path_of(part_entry), compile=False)
    fracture_models = {
        part: keras.models.load_model(diagnoser.manifest.path_of(diagnoser.fracture_entry(part)), compile=False)
        for part in ("elbow", "hand", "shoulder")
    }

    def run(path: Path) -> float | None:
        xray = read_xray(path)
        x = to_model_input(xray, part_entry.input_size)[np.newaxis]
        part_scores = part_model.predict(x, verbose=0)["part"][0]
        part = part_entry.class_names[int(np.argmax(part_scores))]
        if part not in fracture_models:
            part = "hand"  # time a full two-model pass for every image, as the published app does
        entry = diagnoser.fracture_entry(part)
        x = to_model_input(xray, entry.input_size)[np.newaxis]
        return float(fracture_models[part].predict(x, verbose=0)["fracture"][0, entry.output_index])

    return run


def floor_runner(diagnoser):
    """One bare ResNet-50 pass (the trunk alone) on a prepared input at the shipped size,
    nothing else, run the fastest way we know (a traced tf.function)."""
    import tensorflow as tf

    model = next(iter(diagnoser._models.values()))
    trunk = model.get_layer("resnet50")
    size = diagnoser.part_entry.input_size
    x = tf.constant(np.random.default_rng(0).random((1, size, size, 3), dtype=np.float32) * 255.0)

    @tf.function
    def forward(batch):
        return tf.nest.flatten(trunk(batch, training=False))[-1]  # the last stage: the whole trunk ran

    forward(x)

    def run(_item) -> None:
        forward(x).numpy()

    return run


def floor_passes(diagnoser) -> str:
    """What the floor runs, in words, e.g. "192 px"."""
    return f"{diagnoser.part_entry.input_size} px"


def cold_start(image: Path) -> dict[str, float]:
    """Launch the window in a fresh process: time to shown, and to the first result on screen."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    display = None
    if not env.get("DISPLAY"):
        display = subprocess.Popen(["Xvfb", ":93", "-screen", "0", "1400x900x24"], stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        env["DISPLAY"] = ":93"
    env["BONEFRAC_HOME"] = str(REPO / ".cache" / "bench-home")
    launched = time.time()
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("cold_start.py")), str(launched), str(image)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if display is not None:
        display.terminate()
    figures = dict(line.split("=") for line in result.stdout.split() if "=" in line)
    if "window_shown_s" not in figures:
        raise RuntimeError(f"cold start failed: {result.stderr[-2000:]}")
    return {key: round(float(value), 2) for key, value in figures.items()}


def cli_batch(images: list[Path]) -> dict[str, float]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "app", "predict", "--json", *map(str, images)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=1200,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"bonefrac predict failed: {result.stderr[-2000:]}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "batch_images": len(images),
        "batch_seconds": round(seconds, 2),
        "batch_images_per_s": round(len(images) / seconds, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", default=None)
    parser.add_argument("--images", type=int, default=50, help="images timed for latency")
    parser.add_argument("--batch", type=int, default=200, help="images for the CLI throughput run")
    args = parser.parse_args()

    from app.diagnosis import Diagnoser
    from app.machine import describe_machine

    batch_images = real_images(args.batch)
    images = batch_images[: args.images]
    figures: dict = {"machine": describe_machine(), "date": dt.date.today().isoformat()}
    figures.update(cli_batch(batch_images))  # first: a fresh child, its peak RSS alone
    figures.update(cold_start(images[0]))

    diagnoser = Diagnoser()
    figures["model_version"] = diagnoser.model_version
    plain = time_calls(lambda p: diagnoser.diagnose(p, with_heatmap=False), images)
    heat = time_calls(lambda p: diagnoser.diagnose(p, with_heatmap=True), images)
    base = time_calls(baseline_runner(diagnoser), images)
    floor = time_calls(floor_runner(diagnoser), images)
    figures.update(
        {
            "diagnose_p50_ms": percentile(plain, 50),
            "diagnose_p95_ms": percentile(plain, 95),
            "diagnose_heatmap_p50_ms": percentile(heat, 50),
            "diagnose_heatmap_p95_ms": percentile(heat, 95),
            "baseline_p50_ms": percentile(base, 50),
            "baseline_p95_ms": percentile(base, 95),
            "floor_p50_ms": percentile(floor, 50),
            "latency_images": len(images),
            "floor_passes": floor_passes(diagnoser),
        }
    )
    figures["speedup_vs_baseline"] = round(figures["baseline_p50_ms"] / figures["diagnose_p50_ms"], 2)
    figures["ratio_to_floor"] = round(figures["diagnose_p50_ms"] / figures["floor_p50_ms"], 2)
    print(figures)
    write_json(args.json, figures)
    write_markdown(figures)


def write_markdown(f: dict) -> None:
    m = f["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m.items() if k not in ("cpu", "cores", "os"))
    text = f"""# Performance

Measured by `python bench/run.py` on {f["date"]}: **{m["cpu"]}, {m["cores"]} cores**, {m["os"]};
{versions}. Model version `{f["model_version"]}`. Latency is timed over {f["latency_images"]} real
validation X-rays from `../shared/data/xray` (file read + preprocessing + model + verdict), after 5 warm-up calls.

| what | p50 | p95 |
|---|---|---|
| one diagnosis, no heatmap | {f["diagnose_p50_ms"]} ms | {f["diagnose_p95_ms"]} ms |
| one diagnosis with heatmap | {f["diagnose_heatmap_p50_ms"]} ms | {f["diagnose_heatmap_p95_ms"]} ms |
| baseline: separate ResNet-50s, `model.predict` per image | {f["baseline_p50_ms"]} ms | {f["baseline_p95_ms"]} ms |
| floor: the ResNet-50 forward passes alone ({f.get("floor_passes", "one pass")}) | {f["floor_p50_ms"]} ms | |

- Speed-up over the baseline, same run: **{f["speedup_vs_baseline"]}x**; our diagnosis is
  {f["ratio_to_floor"]}x the floor.
- Cold start of the window: shown after **{f["window_shown_s"]} s**; first diagnosis on screen after
  **{f["first_diagnosis_s"]} s** (models load on a background thread while the window is already up).
- `bonefrac predict` on {f["batch_images"]} images, one process, start-up and model loading included:
  {f["batch_seconds"]} s, **{f["batch_images_per_s"]} images/s**; peak memory (RSS) {f["peak_rss_mb"]} MB.
"""
    soak = REPO / "docs" / "soak.json"
    if soak.exists():
        import json

        s = json.loads(soak.read_text())
        text += (
            f"\n## Soak\n\n`python bench/soak.py --json docs/soak.json`: {s['diagnoses']} diagnoses in one process; "
            f"RSS grew {s['soak_rss_growth_mb']} MB after a {s['rss_after_warm_up_mb']} MB warm-up level "
            f"(every 100: {s['rss_every_100_mb']}), on {s['machine']['cpu']}, {s['machine']['cores']} cores.\n"
        )
    PERFORMANCE_MD.parent.mkdir(exist_ok=True)
    PERFORMANCE_MD.write_text(text)


if __name__ == "__main__":
    main()
