"""`Diagnoser`: X-ray in, `Diagnosis` out.

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
from pathlib import Path

import numpy as np

from app.diagnosis.manifest import ModelEntry, ModelManifest, load_manifest, sha256_of
from app.diagnosis.runner import Runner, make_runner
from app.diagnosis.scope import out_of_scope_reason
from app.diagnosis.value import SUPPORTED_PARTS, Diagnosis, StudyDiagnosis, Thresholds, Verdict
from app.errors import BoneFracError, ModelFilesError, XRayReadError
from app.locations import shipped_models_dir
from app.xray import XRay, read_xray, to_model_input

DEFAULT_MODELS_DIR = shipped_models_dir()


def _keras():
    """Import Keras with TensorFlow's native start-up log lines (written straight to file
    descriptor 2, past Python) kept off the user's terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved_stderr = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras
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

    def diagnose(self, source: str | os.PathLike[str] | XRay, with_heatmap: bool = True) -> Diagnosis:
        if isinstance(source, XRay):
            started = time.perf_counter()
            inputs = self._model_inputs(source)
            prepared = time.perf_counter()
            outputs = self._infer([inputs])[0]
            timings = {"read": 0.0, "preprocess": _ms(started, prepared), "inference": _ms(prepared)}
            return self._compose(source, outputs, with_heatmap, timings, started)
        return self.diagnose_file(source, with_heatmap)[1]

    def diagnose_file(self, path: str | os.PathLike[str], with_heatmap: bool = True) -> tuple[XRay, Diagnosis]:
        """Read a file and diagnose it; the XRay comes back too, for display and heatmaps."""
        result = next(self.diagnose_files([path], with_heatmap=with_heatmap))
        if isinstance(result[2], BoneFracError):
            raise result[2]
        return result[1], result[2]

    def diagnose_files(
        self, paths: Sequence[str | os.PathLike[str]], with_heatmap: bool = True, batch_size: int = 16
    ) -> Iterator[tuple[Path, XRay | None, Diagnosis | BoneFracError]]:
        """Diagnose many files, in order: files are read and prepared on worker threads while
        the model runs on whole batches. A file that cannot be read yields its error."""
        paths = [Path(p) for p in paths]
        window = 2 * batch_size  # read ahead a bounded number of files: memory stays flat
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as readers:
            pending: list[tuple[Path, XRay, dict[int, np.ndarray], str, float, float]] = []
            for chunk_start in range(0, len(paths), window):
                chunk = paths[chunk_start : chunk_start + window]
                for path, item in zip(chunk, readers.map(self._read_and_prepare, chunk)):
                    if isinstance(item, BoneFracError):
                        yield from self._flush(pending, with_heatmap)
                        pending = []
                        yield path, None, item
                        continue
                    pending.append((path, *item))
                    if len(pending) == batch_size:
                        yield from self._flush(pending, with_heatmap)
                        pending = []
            yield from self._flush(pending, with_heatmap)

    def _read_and_prepare(self, path: Path):
        started = time.perf_counter()
        try:
            xray = read_xray(path)
            digest = sha256_of(path)
        except BoneFracError as error:
            return error
        except OSError as error:  # vanished or unreadable between reading and hashing
            return XRayReadError(f"the file could not be read ({error.strerror or error})")
        read = time.perf_counter()
        inputs = self._model_inputs(xray)
        return xray, inputs, digest, _ms(started, read), _ms(read)

    def _flush(self, pending: list, with_heatmap: bool) -> Iterator[tuple[Path, XRay, Diagnosis]]:
        if not pending:
            return
        started = time.perf_counter()
        outputs = self._infer([item[2] for item in pending])
        inference_ms = _ms(started) / len(pending)  # per image: the batch shares one pass
        for (path, xray, _, digest, read_ms, preprocess_ms), image_outputs in zip(pending, outputs):
            timings = {"read": read_ms, "preprocess": preprocess_ms, "inference": inference_ms}
            composed_from = time.perf_counter() - (read_ms + preprocess_ms + inference_ms) / 1000
            yield path, xray, self._compose(xray, image_outputs, with_heatmap, timings, composed_from, digest)

    def _compose(
        self,
        xray: XRay,
        outputs: dict[tuple, dict[str, np.ndarray]],
        with_heatmap: bool,
        timings: dict[str, float],
        started: float,
        file_sha256: str = "",
    ) -> Diagnosis:
        """Model outputs for one image -> the Diagnosis value."""
        part_entry = self.part_entry
        part_scores = outputs[_pass_of(part_entry)]["part"]
        part_probabilities = {name: float(p) for name, p in zip(part_entry.class_names, part_scores)}
        part = max(part_probabilities, key=part_probabilities.get)
        head_probabilities = {}
        for name in SUPPORTED_PARTS:
            head_probabilities[name] = self._fracture_probability(self.fracture_entry(name), outputs)

        scope_reason = out_of_scope_reason(xray)
        reason, probability, thresholds, verdict = self._route(part_probabilities, head_probabilities, scope_reason)
        heatmap_started = time.perf_counter()
        heatmap = None
        if reason is None and with_heatmap:
            entry = self.fracture_entry(part)
            heatmap = self._heatmap(entry, outputs)
        timings = {**timings, "heatmap": _ms(heatmap_started), "total": _ms(started)}
        return Diagnosis(
            file=xray.source_name,
            part=part,
            part_probabilities=part_probabilities,
            verdict=verdict,
            fracture_probability=probability,
            thresholds=thresholds,
            unsupported_reason=reason,
            model_version=self.model_version,
            timings_ms=timings,
            file_sha256=file_sha256,
            head_probabilities=head_probabilities,
            heatmap=heatmap,
            notes=xray.notes,
            out_of_scope=scope_reason is not None,
        )

    def _fracture_probability(self, entry: ModelEntry, outputs: dict[tuple, dict[str, np.ndarray]]) -> float:
        return float(outputs[_pass_of(entry)]["fracture"][entry.output_index])

    def _heatmap(self, entry: ModelEntry, outputs: dict[tuple, dict[str, np.ndarray]]) -> np.ndarray:
        """Where the fracture model found its evidence: its fracture map (each cell's probability
        of holding a fracture, learnt from the data's boxes), or for older models the CAM."""
        outputs = outputs[_pass_of(entry)]
        if "fracture_map" in outputs:
            return outputs["fracture_map"][..., entry.output_index].astype(np.float32)
        return self._class_activation_map(entry, outputs["features"])

    def _route(
        self, part_probabilities: dict[str, float], head_probabilities: dict[str, float], refused: str | None = None
    ) -> tuple[str | None, float | None, Thresholds | None, Verdict]:
        """Route to the most likely part's fracture head: (reason refused, probability,
        thresholds, verdict). `refused` is a reason found before the model."""
        part = max(part_probabilities, key=part_probabilities.get)
        # In this order: only a supported part reaches its fracture model's own check.
        reason = (
            refused
            or self._unsupported_reason(part, part_probabilities[part])
            or self.fracture_entry(part).verdicts_withheld
        )
        if reason is not None:
            return reason, None, None, Verdict.UNSUPPORTED
        thresholds = self.fracture_entry(part).thresholds
        probability = head_probabilities[part]
        return None, probability, thresholds, thresholds.verdict(probability)

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

    def diagnose_study(self, sources: Sequence[str | os.PathLike[str] | XRay]) -> StudyDiagnosis:
        return self.aggregate_study([self.diagnose(source) for source in sources])

    def aggregate_study(self, views: Sequence[Diagnosis]) -> StudyDiagnosis:
        """Study part from the mean part probabilities; study fracture probability is the
        mean of that part's fracture head over all views."""
        if not views:
            raise ValueError("a study needs at least one image")
        # Views refused before the model (a photograph, a blank image) are not part of the study;
        # a study of nothing but such views is refused as a whole.
        in_scope = [v for v in views if not v.out_of_scope]
        refused = None if in_scope else "none of the images is a radiograph the models can read"
        views = in_scope or list(views)
        names = list(views[0].part_probabilities)
        mean_parts = {name: float(np.mean([v.part_probabilities[name] for v in views])) for name in names}
        part = max(mean_parts, key=mean_parts.get)
        mean_heads = {name: float(np.mean([v.head_probabilities[name] for v in views])) for name in SUPPORTED_PARTS}
        reason, probability, thresholds, verdict = self._route(mean_parts, mean_heads, refused)
        return StudyDiagnosis(
            views=tuple(views),
            part=part,
            part_probabilities=mean_parts,
            verdict=verdict,
            fracture_probability=probability,
            thresholds=thresholds,
            unsupported_reason=reason,
            model_version=self.model_version,
        )


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
