"""Words shown in the window, from Diagnosis values and the manifest (no computing here)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.diagnosis.manifest import ModelManifest
from app.diagnosis.model_card import fracture_model_summary, part_model_summary, training_data_summary
from app.diagnosis.value import NOTICE, Diagnosis, StudyDiagnosis
from app.history import HistoryRow, local_time
from app.words import VERDICT_LABELS, confidence_text, study_views_text

HOW_TO = """How to use
1. Open X-rays (Ctrl+O), or drop files on the window. Several files are one study: click a thumbnail to switch views.
2. Press Predict (Ctrl+P). The body part is recognised first; elbow, hand and shoulder images then get that part's
   fracture verdict: Fractured, Normal, or Uncertain when the probability falls between the two thresholds.
   A part whose fracture model showed no skill on validation images gets no verdict (see the models below).
3. Switch on Heatmap to see where the fracture model found its evidence (the legend says what its colours mean;
   it is not a fracture outline).
4. Adjust the view (it never changes what the models read): drag with the right mouse button for brightness and
   contrast, I inverts, R rotates, H flips, Escape or 0 resets; the wheel or - / + zoom, Ctrl+0 fits.
5. Save a screenshot of the window (Ctrl+S), a PDF/PNG report (Ctrl+R) or a DICOM result for PACS (Save as DICOM);
   every result is kept in History (Ctrl+H). Open folder lists a folder's studies in a worklist to predict them all
   (Ctrl+L returns to it from here). Ctrl+Q closes the app.
"""

LIMITATIONS = """Limitations
- Trained on a few thousand public radiographs whose labels were not clinically reviewed.
- Only elbow, hand and shoulder are supported; other images are answered "Not supported".
- All elbow images, and most shoulder images, come from a single public source: performance on other hospitals'
  images is unknown.
"""

ATTRIBUTION = """Data attribution (the model card above names the sources each model was trained on)
- FracAtlas (Abedeen et al., Scientific Data 2023), CC BY 4.0.
- Bone Fracture Detection by veda, Roboflow Universe (v4), CC BY 4.0.
- Bone Fracture Multi-Region X-ray Data by Madushani Rodrigo, Kaggle, ODC-By 1.0.
"""


def part_text(diagnosis: Diagnosis) -> str:
    return f"{diagnosis.part.capitalize()} — {confidence_text(diagnosis.part_confidence)} confidence"


def probability_text(diagnosis: Diagnosis) -> str:
    if diagnosis.fracture_probability is None:
        return f"Not supported: {diagnosis.unsupported_reason}."
    return f"Fracture probability {diagnosis.fracture_probability:.2f} ({diagnosis.part} model)"


def stored_text(row: HistoryRow) -> str:
    """A result reopened from the history, said to be stored (not a new prediction)."""
    text = f"Stored result from {local_time(row.created_utc)}, model {row.model_version}"
    if row.fracture_probability is not None:
        text += f": fracture probability {row.fracture_probability:.2f}"
    return text + ". Press Predict to re-run."


def file_text(path: Path, index: int, count: int, fits: Callable[[str], bool] = lambda _text: True) -> str:
    """The open file and its folder; with several views, which one is shown. Where the whole
    does not `fit`, folders go from the middle of the path (its start and the file's own folder
    stay longest); the file name is never cut."""
    view = "" if count < 2 else f"View {index + 1} of {count}: "
    text = f"{view}{path.name}   ({path.parent})"
    parts = path.parent.parts
    for dropped in range(1, len(parts)):
        if fits(text):
            return text
        start = (len(parts) - dropped + 1) // 2  # keep this many folders from the start
        head, tail = parts[:start], parts[start + dropped :]
        folder = str(Path(*head, "…", *tail)) if head else str(Path("…", *tail))
        text = f"{view}{path.name}   ({folder})"
    return text if fits(text) else f"{view}{path.name}"


def folder_text(paths: list[Path]) -> str:
    folders = {path.parent for path in paths}
    return f"from {next(iter(folders))}" if len(folders) == 1 else f"from {len(folders)} folders"


def study_text(study: StudyDiagnosis) -> str:
    verdict = VERDICT_LABELS[study.verdict]
    if study.fracture_probability is None:
        return f"Study ({len(study.views)} views): {verdict} — {study.unsupported_reason}"
    if study.mixed_parts:  # as suspicious as its most suspicious part
        parts = ", ".join(study.mixed_parts)
        return (
            f"Study ({len(study.views)} views of different parts: {parts}): {verdict}, "
            f"from its {study.part} views (probability {study.fracture_probability:.2f})"
        )
    probability = f"mean probability {study.fracture_probability:.2f}"
    text = f"Study ({len(study.views)} views, {study.part}): {verdict}, {probability}"
    return f"{text} ({views})" if (views := study_views_text(study)) else text


def model_text(manifest: ModelManifest | None, diagnosis: Diagnosis | None) -> str:
    """What the model behind the shown verdict was trained on and how it measured."""
    if manifest is None:
        return ""
    lines = [f"Model version {manifest.version}.", part_model_summary(manifest)]
    if diagnosis is not None and diagnosis.supported:
        lines.append(fracture_model_summary(manifest, diagnosis.part))
    return "\n".join(lines)


def about_text(manifest: ModelManifest | None, models_error: str | None) -> str:
    parts = ["bonefrac — fracture detection decision support", "", NOTICE, "", HOW_TO]
    if manifest is not None:
        parts += [
            f"Models (version {manifest.version})",
            training_data_summary(manifest),
            part_model_summary(manifest),
            *(fracture_model_summary(manifest, part) for part in ("elbow", "hand", "shoulder")),
            "",
        ]
    else:
        parts += [f"Models: not loaded ({models_error or 'still loading'}).", ""]
    parts += [LIMITATIONS, ATTRIBUTION]
    return "\n".join(parts)
