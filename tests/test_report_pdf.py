"""Multi-view PDF reports, written from real diagnoses and read back with pypdf."""

from __future__ import annotations

import re

from pypdf import PdfReader

from app.diagnosis.outlines import outline_mask
from app.diagnosis.value import NOTICE
from app.report import write_report


def test_multi_view_pdf_keeps_each_view_on_one_page_with_numbers_and_notice(
    diagnoser, routed_paths, xray_paths, tmp_path
):
    routed = [path for paths in routed_paths.values() for path in paths]  # views with verdicts and heatmaps
    others = (xray_paths[key] for key in ("hand_0", "shoulder_1", "elbow_0", "other_0"))
    paths = list(dict.fromkeys([*routed, *others]))  # each file once: the PDF stores a repeated image once
    results = [(outcome.xray, outcome.diagnosis) for outcome in diagnoser.diagnose_many(paths)]
    study = diagnoser.aggregate_study([diagnosis for _, diagnosis in results])
    target = tmp_path / "study.pdf"
    write_report(target, results, diagnoser.manifest, study=study, note="ED, follow-up")
    reader = PdfReader(target)
    pages = [" ".join(page.extract_text().split()) for page in reader.pages]
    assert len(pages) >= 3
    for number, text in enumerate(pages, start=1):
        assert NOTICE in text, f"page {number} lacks the notice"
        assert f"Page {number} of {len(pages)}" in text
    # Each view's heading, text and images on one page: a page holds exactly the images of the
    # views whose headings it holds.
    for number, (page, text) in enumerate(zip(reader.pages, pages), start=1):
        views_here = [(x, d) for x, d in results if f"View: {d.file}" in text]
        # X-ray, heatmap where there is one, suspicious regions where the fracture map reaches rule-in.
        expected = sum(
            1 + (d.heatmap is not None) + (outline_mask(d, x.width, x.height) is not None) for x, d in views_here
        )
        assert len(page.images) == expected, f"page {number}: {len(page.images)} images for {len(views_here)} views"
        for _, diagnosis in views_here:
            assert f"Body part: {diagnosis.part}" in text.split(f"View: {diagnosis.file}")[1]
    assert sum(text.count("View: ") for text in pages) == len(results)


def test_pdf_text_is_left_aligned(diagnoser, xray_paths, tmp_path):
    path = xray_paths["hand_0"]
    results = [(outcome.xray, outcome.diagnosis) for outcome in diagnoser.diagnose_many([path])]
    target = tmp_path / "one.pdf"
    write_report(target, results, diagnoser.manifest, note="a long note " * 30)
    for page in PdfReader(target).pages:
        stream = page.get_contents().get_data().decode("latin-1")
        # fpdf2 justifies a line by widening each gap between words: a TJ array of text pieces
        # with spacing numbers between them. Left-aligned lines are plain strings.
        assert not re.search(r"(?<!\\)\) -?[0-9.]+\(", stream)
