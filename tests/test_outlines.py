"""Suspicious regions outlined: the pure geometry on small numeric maps, then end to end with a
real tiny model that has a fracture map (trained here, as tests/test_training.py does): the
Diagnoser's result, the window's Outlines switch, the PDF report and the DICOM result."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pypdf import PdfReader

import training.model  # noqa: F401  registers LogSumExpPool, which a fracture-map model file needs
from app.diagnosis import Diagnoser
from app.diagnosis.outlines import (
    OUTLINE_COLOUR,
    draw_outlines,
    outline_mask,
    outline_of,
    outline_thickness,
    outlines_apply,
    suspicious_mask,
)
from app.diagnosis.value import ACTIVATION_MAP, FRACTURE_MAP, SUPPORTED_PARTS, Diagnosis, Thresholds, Verdict
from app.report import write_report
from app.report.dicom_result import write_dicom_result
from app.words import outlines_caption, outlines_text
from app.xray import read_xray
from app.xray.preprocess import letterbox_offsets
from tests.conftest import DATA_DIR, REPO
from tests.test_dicom_result import validate
from tests.test_training import tiny_models  # noqa: F401  the tiny real model, trained once here

RULE_IN = 0.6


def _diagnosis(heatmap: np.ndarray, kind: str = FRACTURE_MAP, verdict: Verdict = Verdict.FRACTURED) -> Diagnosis:
    """A plain result value around a small numeric map (the geometry needs no model)."""
    supported = verdict is not Verdict.UNSUPPORTED
    return Diagnosis(
        file="x.png",
        part="hand",
        part_probabilities={"hand": 1.0},
        verdict=verdict,
        fracture_probability=float(heatmap.max()) if supported else None,
        thresholds=Thresholds(0.3, RULE_IN) if supported else None,
        unsupported_reason=None if supported else "the body part is unclear",
        model_version="test",
        timings_ms={},
        heatmap=heatmap,
        heatmap_kind=kind,
    )


def _one_cell(row: int, col: int, value: float = 0.9) -> np.ndarray:
    cells = np.full((4, 4), 0.1, dtype=np.float32)
    cells[row, col] = value
    return cells


def _band(height: int, width: int, box: tuple[int, int, int, int], thickness: int) -> np.ndarray:
    """The expected outline: the box (top, bottom, left, right; inclusive) minus its inside."""
    top, bottom, left, right = box
    band = np.zeros((height, width), dtype=bool)
    band[top : bottom + 1, left : right + 1] = True
    band[top + thickness : bottom + 1 - thickness, left + thickness : right + 1 - thickness] = False
    return band


def test_one_cell_at_rule_in_is_one_closed_outline_at_its_place_on_a_non_square_image():
    # 120 x 80: the square is 120 px, padded 20 px above and below; each of the 4x4 cells is 30 px.
    diagnosis = _diagnosis(_one_cell(1, 2, value=RULE_IN))  # "at or above": equal counts
    mask = suspicious_mask(diagnosis, 120, 80)
    expected = np.zeros((80, 120), dtype=bool)
    expected[30 - 20 : 60 - 20, 60:90] = True  # rows 30-59 of the square, less the padding
    assert np.array_equal(mask, expected)
    outline = outline_mask(diagnosis, 120, 80)
    thickness = outline_thickness(120, 80)
    assert np.array_equal(outline, _band(80, 120, (10, 39, 60, 89), thickness))


def test_a_region_at_the_image_edge_is_closed_along_the_edge():
    diagnosis = _diagnosis(_one_cell(0, 0))  # the top row of cells is mostly padding on 120 x 80
    outline = outline_mask(diagnosis, 120, 80)
    assert np.array_equal(outline, _band(80, 120, (0, 9, 0, 29), outline_thickness(120, 80)))


def test_no_cell_at_rule_in_no_activation_map_and_no_verdict_give_no_outline():
    below = _diagnosis(np.full((4, 4), RULE_IN - 0.01, dtype=np.float32), verdict=Verdict.UNCERTAIN)
    assert outlines_apply(below) and outline_mask(below, 120, 80) is None
    assert not suspicious_mask(below, 120, 80).any()
    assert "no region" in outlines_text(below, outlined=False)
    relative = _diagnosis(_one_cell(1, 2, value=1.0), kind=ACTIVATION_MAP)  # a CAM at its own maximum
    assert not outlines_apply(relative) and outline_mask(relative, 120, 80) is None
    assert "relative" in outlines_text(relative, outlined=False)
    unsupported = _diagnosis(_one_cell(1, 2), verdict=Verdict.UNSUPPORTED)
    assert outline_mask(unsupported, 120, 80) is None
    assert "no verdict" in outlines_text(unsupported, outlined=False)


def test_outlines_beside_an_uncertain_verdict_say_why_a_region_can_pass_where_the_image_does_not():
    fractured = _diagnosis(_one_cell(1, 2, value=RULE_IN + 0.05))
    assert "pools all regions" not in outlines_text(fractured, outlined=True)
    pooled_lower = dataclasses.replace(fractured, verdict=Verdict.UNCERTAIN, fracture_probability=RULE_IN - 0.1)
    assert "pools all regions" in outlines_text(pooled_lower, outlined=True)


def test_outline_is_drawn_on_exactly_its_pixels():
    image = Image.fromarray(np.full((80, 120), 90, dtype=np.uint8), mode="L")
    outline = outline_of(np.pad(np.ones((20, 20), dtype=bool), ((30, 30), (50, 50))), 3)
    drawn = np.asarray(draw_outlines(image, outline))
    assert (drawn[outline] == OUTLINE_COLOUR).all()
    assert (drawn[~outline] == 90).all()
    assert outline.sum() == 20 * 20 - 14 * 14


# ---------- end to end, with a real model that has a fracture map ----------
@pytest.fixture(scope="module")
def map_models(tiny_models, tmp_path_factory) -> tuple[Path, Path]:  # noqa: F811  the fixture imported above
    """(models folder, X-ray): the tiny real ResNet-50 with a fracture map that
    tests/test_training.py trains one epoch (published into a scratch folder, never models/) as
    the fracture models, and the shipped model as the body-part model (one epoch leaves the tiny
    part head calling everything "other"; the manifest takes a model file per entry, as a
    retrained per-part model replaces one). In the copy's manifest, edited as a hand-measured
    validation would be: each fracture model has a validation AUROC interval clear of chance (so
    the gate gives verdicts), and the routed model's rule-in lies between the two highest cells
    of the chosen X-ray's real map, so some cells reach it and some do not."""
    models = tmp_path_factory.mktemp("map_model") / "models"
    shutil.copytree(tiny_models / "run" / "models", models)
    shutil.copy2(REPO / "models" / "bonefrac_resnet50.keras", models / "shipped_part.keras")
    raw = json.loads((models / "manifest.json").read_text())
    shipped = json.loads((REPO / "models" / "manifest.json").read_text())
    raw["models"]["body_part"] = {**shipped["models"]["body_part"], "file": "shipped_part.keras"}
    for part in SUPPORTED_PARTS:
        raw["models"][f"fracture_{part}"]["validation"].update(auroc=0.7, auroc_ci=[0.6, 0.8])
    (models / "manifest.json").write_text(json.dumps(raw))

    diagnoser = Diagnoser(models)
    outcomes = diagnoser.diagnose_many(_validation_xrays()[:60], with_heatmap=False)
    path = next((o.source for o in outcomes if o.diagnosis is not None and o.diagnosis.supported), None)
    assert path is not None, "the models route none of 60 validation X-rays to a supported part"
    diagnosis = diagnoser.diagnose(path)
    assert diagnosis.heatmap_kind == FRACTURE_MAP
    values = np.unique(diagnosis.heatmap)
    assert len(values) > 1, "the tiny model's map is flat on this X-ray"
    rule_in = float((values[-1] + values[-2]) / 2)
    raw["models"][f"fracture_{diagnosis.part}"]["thresholds"] = {"rule_out": rule_in / 2, "rule_in": rule_in}
    (models / "manifest.json").write_text(json.dumps(raw))
    return models, path


def _validation_xrays() -> list[Path]:
    with (DATA_DIR / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [DATA_DIR / r["path"] for r in rows if r["split"] == "val" and r["part"] in SUPPORTED_PARTS]


@pytest.fixture(scope="module")
def map_result(map_models):
    models, path = map_models
    diagnoser = Diagnoser(models)
    xray = read_xray(path)
    return diagnoser, xray, diagnoser.diagnose(xray)


def test_diagnosis_outlines_are_exactly_where_the_map_reaches_rule_in(map_result):
    _, xray, diagnosis = map_result
    assert diagnosis.heatmap_kind == FRACTURE_MAP and outlines_apply(diagnosis)
    cells = diagnosis.heatmap >= diagnosis.thresholds.rule_in
    assert cells.any() and not cells.all()
    # Each suspicious cell's block on the image, from the letterbox geometry, one cell at a time.
    width, height = xray.width, xray.height
    x0, y0, side = letterbox_offsets(width, height)
    rows, cols = cells.shape
    expected = np.zeros((height, width), dtype=bool)
    for row, col in zip(*np.nonzero(cells)):
        top, bottom = -(-row * side // rows) - y0, -(-(row + 1) * side // rows) - y0
        left, right = -(-col * side // cols) - x0, -(-(col + 1) * side // cols) - x0
        expected[max(0, top) : max(0, bottom), max(0, left) : max(0, right)] = True
    assert np.array_equal(suspicious_mask(diagnosis, width, height), expected)
    outline = outline_mask(diagnosis, width, height)
    assert outline is not None and outline.any()
    assert not (outline & ~expected).any()  # inside the regions
    # Every region's edge is in the outline: a pixel of a region beside one outside it.
    padded = np.pad(expected, 1)
    beside = (padded[2:, 1:-1], padded[:-2, 1:-1], padded[1:-1, 2:], padded[1:-1, :-2])
    edge = expected & ~np.logical_and.reduce(beside)
    assert not (edge & ~outline).any()
    if diagnosis.verdict is Verdict.FRACTURED:  # the pooled probability never exceeds its largest cell
        assert diagnosis.fracture_probability <= float(diagnosis.heatmap.max()) + 1e-6


def test_window_switch_shows_and_hides_the_outlines(virtual_display, map_models, map_result, tmp_path):
    from app.gui.window import BoneFracWindow
    from tests.test_gui import load, on_screen, wait_for

    models, path = map_models
    _, xray, diagnosis = map_result
    app = BoneFracWindow(models, history_path=tmp_path / "history.sqlite3")
    try:
        wait_for(app, lambda: app.diagnoser is not None or app.models_error is not None)
        assert app.models_error is None
        load(app, path)
        assert app.outlines_switch.cget("state") == "disabled"  # nothing to outline before a result
        app.predict_button.invoke()
        wait_for(app, lambda: not app.predicting)
        assert app.outlines_switch.cget("state") == "normal"
        assert app.outlines_label.cget("text") == outlines_text(app.current_view.diagnosis, outlined=True)
        plain, plain_screen = np.asarray(app.viewer.image.convert("RGB")), on_screen(app)
        outline = outline_mask(app.current_view.diagnosis, xray.width, xray.height)
        app.outlines_switch.toggle()
        app.update()
        shown = np.asarray(app.viewer.image.convert("RGB"))
        assert (shown[outline] == OUTLINE_COLOUR).all()
        assert np.array_equal(shown[~outline], plain[~outline])
        screen = on_screen(app)
        assert np.abs(screen - plain_screen).max() > 40  # drawn on the canvas, not only composed
        # Turned and mirrored with the picture, as the heatmap is.
        app.rotate_button.invoke()
        app.flip_button.invoke()
        app.update()
        assert np.array_equal(np.asarray(app.viewer.image.convert("RGB")), np.fliplr(np.rot90(shown, -1)))
        app.reset_view_button.invoke()
        app.outlines_switch.toggle()
        app.update()
        assert np.array_equal(np.asarray(app.viewer.image.convert("RGB")), plain)
        assert np.abs(on_screen(app) - plain_screen).max() < 1
        # A result with no verdict: the switch is disabled, shows "off" though the user asked for
        # outlines, and the panel says why; a result with a map brings the user's choice back.
        app.outlines_switch.toggle()
        app.update()
        with_map = app.current_view.diagnosis
        unsupported = dataclasses.replace(diagnosis, verdict=Verdict.UNSUPPORTED, unsupported_reason="test")
        app.current_view.diagnosis = unsupported
        app.render_image()
        app.update()
        assert app.outlines_switch.cget("state") == "disabled"
        assert app.outlines_switch.get() == 0
        assert app.outlines_label.cget("text") == outlines_text(unsupported, outlined=False)
        app.current_view.diagnosis = with_map
        app.render_image()
        app.update()
        assert app.outlines_switch.cget("state") == "normal"
        assert app.outlines_switch.get() == 1
        assert (np.asarray(app.viewer.image.convert("RGB"))[outline] == OUTLINE_COLOUR).all()
    finally:
        app.close()
        time.sleep(0.1)


def test_pdf_report_has_the_outlined_image_with_its_caption(map_result, tmp_path):
    diagnoser, xray, diagnosis = map_result
    target = write_report(tmp_path / "outlines.pdf", [(xray, diagnosis)], diagnoser.manifest)
    reader = PdfReader(target)
    assert sum(len(page.images) for page in reader.pages) == 3  # X-ray, heatmap, outlines
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    assert outlines_caption(diagnosis.thresholds) in text
    png = write_report(tmp_path / "outlines.png", [(xray, diagnosis)], diagnoser.manifest)
    assert Image.open(png).size[1] > 0


def _magenta(pixels: np.ndarray) -> np.ndarray:
    red, green, blue = (pixels[..., c].astype(int) for c in range(3))
    return (red > 200) & (green < 60) & (blue > 200)


def test_dicom_result_with_outlines_is_valid_and_shows_them(map_result, tmp_path):
    diagnoser, xray, diagnosis = map_result
    path = write_dicom_result(tmp_path / "outlined_result.dcm", xray, diagnosis, diagnoser.manifest)
    validate(path)
    result = pydicom.dcmread(path)
    assert "outlines" in result.DerivationDescription
    assert _magenta(result.pixel_array).sum() > 0
    # Without a fracture map to threshold the same picture has none.
    relative = dataclasses.replace(diagnosis, heatmap_kind=ACTIVATION_MAP)
    plain = write_dicom_result(tmp_path / "plain_result.dcm", xray, relative, diagnoser.manifest)
    validate(plain)
    assert _magenta(pydicom.dcmread(plain).pixel_array).sum() == 0
