"""What a report says, independent of how it is drawn (PDF or PNG)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from PIL import Image

from app import __version__
from app.diagnosis.heatmap import overlay
from app.diagnosis.manifest import ModelManifest
from app.diagnosis.model_card import fracture_model_summary, part_model_summary, training_data_summary
from app.diagnosis.value import NOTICE, Diagnosis, StudyDiagnosis
from app.report.fonts import printable
from app.words import skill_text, threshold_text, verdict_line
from app.xray import XRay


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
) -> ReportContent:
    created = created or dt.datetime.now().astimezone()
    header = [
        f"Created {created:%Y-%m-%d %H:%M %Z}".strip(),
        f"bonefrac {__version__}, model version {manifest.version}",
    ]
    if note.strip():
        header.append(f"Note: {note.strip()}")
    sections = []
    if study is not None and len(views) > 1:
        lines = [
            f"Study of {len(study.views)} views. Body part: {study.part} "
            f"({study.part_probabilities[study.part]:.0%} mean confidence)",
            verdict_line(study.verdict, study.fracture_probability, study.unsupported_reason),
        ]
        if line := threshold_text(study.thresholds):
            lines.append(line)
        if study.fracture_probability is not None:
            lines.append(skill_text(manifest, study.part))
        sections.append(ReportSection("Study result (mean over views)", tuple(lines)))
    for xray, diagnosis in views:
        lines = [
            f"File: {diagnosis.file}",
            f"Body part: {diagnosis.part} ({diagnosis.part_confidence:.0%} confidence)",
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
        images = [("X-ray", Image.fromarray(xray.as_uint8(), mode="L").convert("RGB"))]
        if diagnosis.heatmap is not None:
            images.append(("Where the model looked (heatmap)", overlay(xray, diagnosis.heatmap)))
        sections.append(ReportSection(f"View: {diagnosis.file}", tuple(lines), tuple(images)))
    sections.append(ReportSection("About the models", (training_data_summary(manifest),)))
    return _printable(ReportContent("Fracture detection report", tuple(header), tuple(sections), NOTICE))


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
