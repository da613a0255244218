"""`Diagnoser`: X-ray in, `Diagnosis` out.

    diagnose(source) -> Diagnosis             one file or XRay; raises what kept it from a diagnosis
    diagnose_many(sources) -> Iterator[Outcome]   many, in order, batched; a bad file is an Outcome
    aggregate_study(diagnoses) -> StudyDiagnosis  views of one study -> one study verdict
                                                  (views of several parts: the worst part's)

Models named in the manifest are loaded once. Every distinct model file runs once per
image and input size; when the body-part model and the fracture models share one trunk
(the shipped design), that is a single ResNet-50 pass giving the part, every fracture head
and the fracture map for the heatmap.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from app.diagnosis.manifest import ModelEntry, ModelManifest, load_manifest
from app.diagnosis.runner import Runner, make_runner
from app.diagnosis.scope import out_of_scope_reason
from app.diagnosis.value import (
    ACTIVATION_MAP,
    FRACTURE_MAP,
    SUPPORTED_PARTS,
    SUSPICION,
    Diagnosis,
    StudyDiagnosis,
    Thresholds,
    Verdict,
)
from app.errors import BoneFracError, ModelFilesError
from app.locations import shipped_models_dir
from app.xray import XRay, read_xray, to_model_input

DEFAULT_MODELS_DIR = shipped_models_dir()

Source = str | os.PathLike[str] | XRay  # a file to read, or an X-ray already read (the window's)


@dataclass(frozen=True, eq=False)
class Outcome:
    """What became of one source: its X-ray and diagnosis, or the error that kept it from
    being diagnosed (a file that cannot be read: `xray` and `diagnosis` are then None)."""

    source: Source  # as given
    xray: XRay | None
    diagnosis: Diagnosis | None
    error: BoneFracError | None = None


@dataclass(frozen=True, eq=False)
class _Prepared:
    """One source read and turned into model inputs, waiting for its batch."""

    source: Source
    xray: XRay
    inputs: dict[int, np.ndarray]  # by input size
    timings: dict[str, float]  # read, preprocess (ms)


class _Route(NamedTuple):
    """Where an image or a study was routed, named as the fields Diagnosis and StudyDiagnosis
    share, so both are built from it by name (`_asdict()`: a shallow dict, Thresholds kept)."""

    verdict: Verdict
    fracture_probability: float | None  # None when unsupported
    thresholds: Thresholds | None
    unsupported_reason: str | None


def _keras():
    """Import Keras with TensorFlow's native start-up log lines (written straight to file
    descriptor 2, past Python) kept off the user's terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved_stderr = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras

            import app.diagnosis.layers  # noqa: F401  (registers our layers before any model loads)
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
    return keras


class Diagnoser:
    def __init__(self, models_dir: Path | None = None) -> None:
        self.manifest: ModelManifest = load_manifest(Path(models_dir or DEFAULT_MODELS_DIR))
        keras = _keras()
        self._models = {}
        self._runners: dict[tuple[str, int], Runner] = {}  # by (file, input size)
        # Models without a fracture map (before 2026-11-29) explain themselves by their CAM.
        self._cam_weights: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for entry in self.manifest.entries.values():
            if entry.file not in self._models:
                try:
                    model = keras.models.load_model(self.manifest.path_of(entry), compile=False)
                    if "fracture_map" not in model.output:
                        kernel, bias = model.get_layer("fracture").get_weights()
                        self._cam_weights[entry.file] = (np.asarray(kernel), np.asarray(bias))
                except Exception as error:  # any load failure means a bad or foreign file
                    raise ModelFilesError(f"model file {entry.file} could not be loaded ({error})") from None
                self._models[entry.file] = model
            key = _pass_of(entry)
            if key not in self._runners:
                size = key[1]
                try:
                    self._runners[key] = make_runner(self._models[entry.file], size)
                except Exception as error:  # a fixed-size model asked to run at another size
                    raise ModelFilesError(f"model file {entry.file} cannot run at {size} px ({error})") from None
        self._passes = {_pass_of(entry) for entry in self.manifest.entries.values()}

    @property
    def model_version(self) -> str:
        return self.manifest.version

    @property
    def part_entry(self) -> ModelEntry:
        return self.manifest.entries["body_part"]

    def fracture_entry(self, part: str) -> ModelEntry:
        return self.manifest.entries[f"fracture_{part}"]

    def _model_inputs(self, xray: XRay) -> dict[int, np.ndarray]:
        """The image at every input size the manifest's models need (usually one)."""
        sizes = {entry.input_size for entry in self.manifest.entries.values()}
        return {size: to_model_input(xray, size) for size in sizes}

    def _infer(self, batch: list[dict[int, np.ndarray]]) -> list[dict[tuple, dict[str, np.ndarray]]]:
        """Each distinct (model file, input size) once over the whole batch; outputs split per image."""
        per_image: list[dict[tuple, dict[str, np.ndarray]]] = [{} for _ in batch]
        for key in self._passes:
            arrays = self._runners[key](np.stack([inputs[key[1]] for inputs in batch]))
            for index, outputs in enumerate(per_image):
                outputs[key] = {name: values[index] for name, values in arrays.items()}
        return per_image

    def diagnose(self, source: Source, with_heatmap: bool = True) -> Diagnosis:
        """One image; raises the error that kept it from being diagnosed (an unreadable file)."""
        (outcome,) = self.diagnose_many([source], with_heatmap=with_heatmap)  # runs it to the end
        if outcome.error is not None:
            raise outcome.error
        return outcome.diagnosis

    def diagnose_many(
        self, sources: Sequence[Source], with_heatmap: bool = True, batch_size: int = 16
    ) -> Iterator[Outcome]:
        """One `Outcome` per source, in order: files are read and prepared on worker threads
        while the model runs on whole batches. A file that cannot be read is an Outcome with
        its error; the others are still diagnosed."""
        sources = list(sources)
        window = 2 * batch_size  # read ahead a bounded number of files: memory stays flat
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as workers:
            pending: list[_Prepared] = []
            for chunk_start in range(0, len(sources), window):
                chunk = sources[chunk_start : chunk_start + window]
                futures = [workers.submit(self._prepare, source) for source in chunk]
                for source, future in zip(chunk, futures):
                    try:
                        pending.append(future.result())
                    except BoneFracError as error:
                        yield from self._run(pending, with_heatmap)  # the views before it, in order
                        pending = []
                        yield Outcome(source, None, None, error)
                        continue
                    if len(pending) == batch_size:
                        yield from self._run(pending, with_heatmap)
                        pending = []
            yield from self._run(pending, with_heatmap)

    def _prepare(self, source: Source) -> _Prepared:
        """Read (unless already an XRay) and make the model inputs; raises BoneFracError."""
        started = time.perf_counter()
        xray = source if isinstance(source, XRay) else read_xray(source)
        read = time.perf_counter()
        inputs = self._model_inputs(xray)
        return _Prepared(source, xray, inputs, {"read": _ms(started, read), "preprocess": _ms(read)})

    def _run(self, batch: list[_Prepared], with_heatmap: bool) -> Iterator[Outcome]:
        if not batch:
            return
        started = time.perf_counter()
        outputs = self._infer([item.inputs for item in batch])
        inference_ms = _ms(started) / len(batch)  # per image: the batch shares one pass
        for item, image_outputs in zip(batch, outputs):
            timings = {**item.timings, "inference": inference_ms}
            yield Outcome(item.source, item.xray, self._compose(item.xray, image_outputs, with_heatmap, timings))

    def _compose(
        self, xray: XRay, outputs: dict[tuple, dict[str, np.ndarray]], with_heatmap: bool, timings: dict[str, float]
    ) -> Diagnosis:
        """Model outputs for one image -> the Diagnosis value. `timings`: read, preprocess, inference."""
        composing = time.perf_counter()
        part_entry = self.part_entry
        part_scores = outputs[_pass_of(part_entry)]["part"]
        part_probabilities = {name: float(p) for name, p in zip(part_entry.class_names, part_scores)}
        part = max(part_probabilities, key=part_probabilities.get)
        head_probabilities = {}
        for name in SUPPORTED_PARTS:
            head_probabilities[name] = self._fracture_probability(self.fracture_entry(name), outputs)

        scope_reason = out_of_scope_reason(xray)
        route = self._route(part_probabilities, head_probabilities, scope_reason)
        heatmap_started = time.perf_counter()
        heatmap, heatmap_kind = None, ""
        if route.unsupported_reason is None and with_heatmap:
            heatmap, heatmap_kind = self._heatmap(self.fracture_entry(part), outputs)
        timings = {**timings, "heatmap": _ms(heatmap_started), "total": sum(timings.values()) + _ms(composing)}
        return Diagnosis(
            file=xray.source_name,
            part=part,
            part_probabilities=part_probabilities,
            **route._asdict(),
            model_version=self.model_version,
            timings_ms=timings,
            file_sha256=xray.file_sha256,
            head_probabilities=head_probabilities,
            heatmap=heatmap,
            heatmap_kind=heatmap_kind,
            notes=xray.notes,
            out_of_scope=scope_reason is not None,
        )

    def _fracture_probability(self, entry: ModelEntry, outputs: dict[tuple, dict[str, np.ndarray]]) -> float:
        return float(outputs[_pass_of(entry)]["fracture"][entry.output_index])

    def _heatmap(self, entry: ModelEntry, outputs: dict[tuple, dict[str, np.ndarray]]) -> tuple[np.ndarray, str]:
        """Where the fracture model found its evidence, and which kind of map that is: its
        fracture map (each cell's probability of holding a fracture, learnt from the data's
        boxes), or for older models the CAM."""
        outputs = outputs[_pass_of(entry)]
        if "fracture_map" in outputs:
            return outputs["fracture_map"][..., entry.output_index].astype(np.float32), FRACTURE_MAP
        return self._class_activation_map(entry, outputs["features"]), ACTIVATION_MAP

    def _route(
        self, part_probabilities: dict[str, float], head_probabilities: dict[str, float], refused: str | None = None
    ) -> _Route:
        """Route to the most likely part's fracture head. `refused` is a reason found before the model."""
        part = max(part_probabilities, key=part_probabilities.get)
        # In this order: only a supported part reaches its fracture model's own check.
        reason = (
            refused
            or self._unsupported_reason(part, part_probabilities[part])
            or self.fracture_entry(part).verdicts_withheld
        )
        if reason is not None:
            return _Route(Verdict.UNSUPPORTED, None, None, reason)
        thresholds = self.fracture_entry(part).thresholds
        probability = head_probabilities[part]
        return _Route(thresholds.verdict(probability), probability, thresholds, None)

    def _unsupported_reason(self, part: str, confidence: float) -> str | None:
        if part not in SUPPORTED_PARTS:
            return f"the image does not look like an elbow, hand or shoulder X-ray (body part: {part})"
        minimum = self.part_entry.min_confidence or 0.0
        if confidence < minimum:
            # Rounded down, so the words agree with the decision: 89.9% reads 89%, not 90%.
            shown = math.floor(confidence * 100)
            return f"the body part is unclear ({part} at {shown}%, below the {minimum:.0%} needed)"
        return None

    def _class_activation_map(self, entry: ModelEntry, features: np.ndarray) -> np.ndarray:
        """Exact CAM: the fracture head is linear on pooled features, so its logit map is the
        feature map times that head's weights. Scaled to [0, 1] for display."""
        kernel, bias = self._cam_weights[entry.file]
        return _scaled(features @ kernel[:, entry.output_index] + bias[entry.output_index])

    def aggregate_study(self, views: Sequence[Diagnosis]) -> StudyDiagnosis:
        """Study part from the mean part probabilities; study fracture probability is the
        mean of that part's fracture head over all views. When some views' part is clear and
        others' is not, or views are clearly of different parts, the verdict comes from the
        clear views instead (see `_study_of_clear_views`)."""
        if not views:
            raise ValueError("a study needs at least one image")
        # Views refused before the model (a photograph, a blank image) are not part of the study;
        # a study of nothing but such views is refused as a whole.
        in_scope = [v for v in views if not v.out_of_scope]
        refused = None if in_scope else "none of the images is a radiograph the models can read"
        views = in_scope or list(views)
        by_part = self._confident_parts(views) if refused is None else {}
        if by_part and (len(by_part) > 1 or sum(map(len, by_part.values())) < len(views)):
            return self._study_of_clear_views(views, by_part)
        mean_parts, mean_heads = _means(views)
        return StudyDiagnosis(
            views=tuple(views),
            part=max(mean_parts, key=mean_parts.get),
            part_probabilities=mean_parts,
            **self._route(mean_parts, mean_heads, refused)._asdict(),
            model_version=self.model_version,
        )

    def _confident_parts(self, views: Sequence[Diagnosis]) -> dict[str, list[Diagnosis]]:
        """The views whose body part is clear (at or above the part model's minimum), by part."""
        minimum = self.part_entry.min_confidence or 0.0
        by_part: dict[str, list[Diagnosis]] = {}
        for view in views:
            if view.part_confidence >= minimum:
                by_part.setdefault(view.part, []).append(view)
        return by_part

    def _study_of_clear_views(self, views: Sequence[Diagnosis], by_part: dict[str, list[Diagnosis]]) -> StudyDiagnosis:
        """The verdict from the views whose body part is clear. Views confidently of different
        parts (a folder of unrelated exports) are not views of one thing: their mean part is
        meaningless and would hide them all as "unclear", as would one view the model cannot
        place beside a clear one. A clinician reads such a study as suspicious as its most
        suspicious part: each part's clear views are a study of that part (mean over them, its
        model's thresholds), and the verdict is the worst of them (fractured, then uncertain,
        then normal; then the higher probability). Views whose part is unclear give no verdict
        of their own (each says why) and do not dilute the others."""
        routes = {part: self._route(*_means(group)) for part, group in by_part.items()}
        with_verdict = [part for part, route in routes.items() if route.unsupported_reason is None]
        if with_verdict:
            part = max(with_verdict, key=lambda p: (SUSPICION[routes[p].verdict], routes[p].fracture_probability))
            route = routes[part]
        elif len(by_part) == 1:  # one clear part without a verdict (e.g. withheld): its own reason
            part = next(iter(by_part))
            route = routes[part]
        else:  # e.g. an elbow whose verdicts are withheld beside a knee: no verdict to give
            part = max(by_part, key=lambda p: len(by_part[p]))
            parts = ", ".join(sorted(by_part))
            reason = f"views of different body parts ({parts}), none with a verdict"
            route = _Route(Verdict.UNSUPPORTED, None, None, reason)
        return StudyDiagnosis(
            views=tuple(views),
            part=part,
            part_probabilities=_means(by_part[part])[0],  # of the views that gave the verdict
            **route._asdict(),
            model_version=self.model_version,
            mixed_parts=tuple(sorted(by_part)) if len(by_part) > 1 else (),
        )


def _means(views: Sequence[Diagnosis]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean part probabilities and mean fracture head outputs over `views`."""
    names = list(views[0].part_probabilities)
    mean_parts = {name: float(np.mean([v.part_probabilities[name] for v in views])) for name in names}
    mean_heads = {name: float(np.mean([v.head_probabilities[name] for v in views])) for name in SUPPORTED_PARTS}
    return mean_parts, mean_heads


def _pass_of(entry: ModelEntry) -> tuple[str, int]:
    """Entries that share a file and an input size share one forward pass."""
    return entry.file, entry.input_size


def _scaled(values: np.ndarray) -> np.ndarray:
    """A map scaled to [0, 1] for display (all zero when flat)."""
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-9:
        return np.zeros_like(values, dtype=np.float32)
    return ((values - low) / (high - low)).astype(np.float32)


def _ms(start: float, end: float | None = None) -> float:
    return ((time.perf_counter() if end is None else end) - start) * 1000.0
