"""What a report says, independent of how it is drawn (PDF or PNG)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from PIL import Image

from app import __version__
from app.diagnosis.heatmap import overlay
from app.diagnosis.manifest import ModelManifest
from app.diagnosis.model_card import fracture_model_summary, part_model_summary, training_data_summary
from app.diagnosis.outlines import draw_outlines, outline_mask, outlines_apply
from app.diagnosis.value import NOTICE, Diagnosis, StudyDiagnosis
from app.report.fonts import printable
from app.words import (
    confidence_text,
    mixed_study_words,
    outlines_caption,
    outlines_text,
    skill_text,
    study_views_text,
    threshold_text,
    verdict_line,
)
from app.xray import XRay

# Always said: a report cannot tell whether the view on screen was adjusted when it was made.
ORIGINAL_PIXELS_LINE = (
    "The models read the original image; display adjustments in the window (window/level, invert, "
    "rotation, flip) are not applied to the diagnosis, and the images here are shown as read."
)


@dataclass(frozen=True)
class ReportSection:
    heading: str
    lines: tuple[str, ...]
    images: tuple[tuple[str, Image.Image], ...] = ()


@dataclass(frozen=True)
class ReportContent:
    title: str
    header_lines: tuple[str, ...]
    sections: tuple[ReportSection, ...]
    notice: str


def build_content(
    views: list[tuple[XRay, Diagnosis]],
    manifest: ModelManifest,
    study: StudyDiagnosis | None = None,
    note: str = "",
    created: dt.datetime | None = None,
    patient_identifiers: bool = False,
) -> ReportContent:
    """`patient_identifiers`: print the DICOM source's patient name, ID and birth date (the
    user's choice, off by default); images without a DICOM header have none to print."""
    created = created or dt.datetime.now().astimezone()
    header = [
        f"Created {created:%Y-%m-%d %H:%M %Z}".strip(),
        f"bonefrac {__version__}, model version {manifest.version}",
    ]
    if patient_identifiers and (line := patient_line(views)):
        header.append(line)
    if note.strip():
        header.append(f"Note: {note.strip()}")
    sections = []
    if study is not None and len(views) > 1:
        confidence = confidence_text(study.part_probabilities[study.part])
        first = f"Study of {len(study.views)} views. Body part: {study.part} ({confidence} mean confidence)"
        if study.mixed_parts:  # the verdict is its most suspicious part's
            first = f"Study of {len(study.views)} views: {mixed_study_words(study)} ({confidence} mean confidence)"
        lines = [first, verdict_line(study.verdict, study.fracture_probability, study.unsupported_reason)]
        if from_views := study_views_text(study):  # not all views gave the verdict
            lines.append(from_views[0].upper() + from_views[1:] + ".")
        if line := threshold_text(study.thresholds):
            lines.append(line)
        if study.fracture_probability is not None:
            lines.append(skill_text(manifest, study.part))
        title = "Study result (its most suspicious part)" if study.mixed_parts else "Study result (mean over views)"
        sections.append(ReportSection(title, tuple(lines)))
    for xray, diagnosis in views:
        lines = [
            f"File: {diagnosis.file}",
            f"Body part: {diagnosis.part} ({confidence_text(diagnosis.part_confidence)} confidence)",
            verdict_line(diagnosis.verdict, diagnosis.fracture_probability, diagnosis.unsupported_reason),
        ]
        if line := threshold_text(diagnosis.thresholds):
            lines.append(line)
        if diagnosis.supported:
            lines.append(skill_text(manifest, diagnosis.part))
        lines.append(part_model_summary(manifest))
        if diagnosis.supported:
            lines.append(fracture_model_summary(manifest, diagnosis.part))
        lines.extend(f"Reader note: {n}" for n in diagnosis.notes)
        plain = Image.fromarray(xray.as_uint8(), mode="L").convert("RGB")
        images = [("X-ray", plain)]
        if diagnosis.heatmap is not None:
            images.append(("Where the model looked (heatmap)", overlay(xray, diagnosis.heatmap)))
        outlines = outline_mask(diagnosis, xray.width, xray.height)
        if outlines is not None:  # on the plain X-ray: the edges of the regions read best there
            images.append((outlines_caption(diagnosis.thresholds), draw_outlines(plain, outlines)))
        elif outlines_apply(diagnosis):
            lines.append(outlines_text(diagnosis, outlined=False))
        sections.append(ReportSection(f"View: {diagnosis.file}", tuple(lines), tuple(images)))
    sections.append(ReportSection("About the models", (training_data_summary(manifest), ORIGINAL_PIXELS_LINE)))
    return _printable(ReportContent("Fracture detection report", tuple(header), tuple(sections), NOTICE))


def view_picture(xray: XRay, diagnosis: Diagnosis) -> Image.Image:
    """One picture of a view with all it has drawn on it: the heatmap overlay where there is
    one, and the suspicious regions' outlines on top (what a DICOM result carries)."""
    if diagnosis.heatmap is not None:
        image = overlay(xray, diagnosis.heatmap)
    else:
        image = Image.fromarray(xray.as_uint8(), mode="L").convert("RGB")
    outlines = outline_mask(diagnosis, xray.width, xray.height)
    return image if outlines is None else draw_outlines(image, outlines)


def patient_line(views: list[tuple[XRay, Diagnosis]]) -> str:
    """The patient as the first DICOM view's header names them, or "" when no view has one."""
    header = next((xray.dicom_header for xray, _ in views if xray.dicom_header is not None), None)
    if header is None:
        return ""
    name = str(header.get("PatientName", "") or "").replace("^", " ").strip()
    fields = [("Patient", name), ("ID", str(header.get("PatientID", "") or "")), ("born", _date(header))]
    shown = [f"{label} {value}" for label, value in fields if value]
    return "; ".join(shown)


def _date(header) -> str:
    """PatientBirthDate (DICOM's YYYYMMDD) as YYYY-MM-DD, or as stored when it is not a date."""
    value = str(header.get("PatientBirthDate", "") or "")
    return f"{value[:4]}-{value[4:6]}-{value[6:]}" if len(value) == 8 and value.isdigit() else value


def _printable(content: ReportContent) -> ReportContent:
    """Every string as the report fonts can draw it (file names and notes may hold any script)."""
    sections = tuple(
        ReportSection(
            printable(section.heading),
            tuple(printable(line) for line in section.lines),
            tuple((printable(caption), image) for caption, image in section.images),
        )
        for section in content.sections
    )
    return ReportContent(
        printable(content.title), tuple(printable(line) for line in content.header_lines), sections, content.notice
    )
