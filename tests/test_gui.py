"""The real window under a virtual display, driven through Tk events, with the shipped models."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageTk
from pypdf import PdfReader

from app.gui.text import part_text, probability_text
from app.history import History
from app.report.content import VERDICT_LABELS
from tests.conftest import MODELS_DIR


def wait_for(window, condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the window did not reach the expected state in time")
        window.update()
        time.sleep(0.02)


@pytest.fixture(scope="module")
def window(virtual_display, tmp_path_factory):
    from app.gui.window import BoneFracWindow

    home = tmp_path_factory.mktemp("home")
    created = time.monotonic()
    app = BoneFracWindow(MODELS_DIR, history_path=home / "history.sqlite3")
    app.update()
    app.shown_before_models = app.diagnoser is None  # the window must not wait for TensorFlow
    app.created = created
    wait_for(app, lambda: app.diagnoser is not None or app.models_error is not None)
    yield app
    app.close()


def close_dialogs(app) -> list[str]:
    messages = [d.message for d in app.dialogs if d.winfo_exists()]
    for dialog in app.dialogs:
        if dialog.winfo_exists():
            dialog.ok_button.invoke()
    app.dialogs.clear()
    app.update()
    return messages


def load(app, *paths: Path) -> None:
    before = app.generation
    app.load_paths(list(paths))
    wait_for(app, lambda: app.generation == before + 1 and not app.tasks.busy)


def test_window_opens_before_models_and_predict_waits_for_an_image(window):
    assert window.shown_before_models
    assert window.models_error is None
    assert window.notice_label.cget("text").startswith("Decision support, not a diagnosis")
    if not window.views:
        assert window.predict_button.cget("state") == "disabled"


def test_predict_shows_the_engines_diagnosis(window, diagnoser, xray_paths):
    path = xray_paths["hand_1"]
    load(window, path)
    assert window.predict_button.cget("state") == "normal"
    window.predict_button.focus_set()
    window.event_generate("<Control-p>")  # the keyboard shortcut, as a user presses it
    window.update()
    assert window.predict_button.cget("state") == "disabled"  # no second click while it runs
    wait_for(window, lambda: not window.predicting)
    expected = diagnoser.diagnose(path)
    assert window.part_label.cget("text") == part_text(expected)
    assert window.verdict_label.cget("text") == VERDICT_LABELS[expected.verdict]
    assert window.probability_label.cget("text") == probability_text(expected)
    row = window.history.rows()[0]
    assert (row.file_sha256, row.part, row.verdict) == (expected.file_sha256, expected.part, expected.verdict.value)
    assert row.model_version == expected.model_version


def test_study_of_several_views(window, xray_paths):
    load(window, xray_paths["elbow_0"], xray_paths["elbow_1"])
    window.predict_button.invoke()
    wait_for(window, lambda: not window.predicting)
    assert window.study is not None and len(window.study.views) == 2
    assert window.study_label.cget("text").startswith("Study (2 views")
    assert len(window.thumbnail_buttons) == 2
    window.thumbnail_buttons[1].invoke()
    assert window.current == 1


def test_heatmap_toggle_changes_the_picture(window, routed_paths):
    load(window, routed_paths["shoulder"][0])
    window.predict_button.invoke()
    wait_for(window, lambda: not window.predicting)
    assert window.current_view.diagnosis.heatmap is not None
    plain = np.asarray(window.viewer.image.convert("RGB"))
    window.heatmap_switch.toggle()
    window.update()
    shown = np.asarray(window.viewer.image.convert("RGB"))
    assert np.abs(shown.astype(int) - plain.astype(int)).mean() > 1.0
    window.heatmap_switch.toggle()
    window.update()
    assert np.array_equal(np.asarray(window.viewer.image.convert("RGB")), plain)


def test_screenshot_is_the_window(window, tmp_path):
    target = tmp_path / "shot.png"
    assert window.save_screenshot(target)
    with Image.open(target) as shot:
        assert shot.size == (window.winfo_width(), window.winfo_height())
        assert np.asarray(shot.convert("L")).std() > 10  # not blank


def test_report_reads_back(window, tmp_path, xray_paths):
    load(window, xray_paths["hand_0"])
    window.predict_button.invoke()
    wait_for(window, lambda: not window.predicting)
    window.note_entry.insert(0, "left hand, follow-up")
    target = tmp_path / "report.pdf"
    window.save_report(target)  # written on the worker thread
    assert window.report_button.cget("state") == "disabled"  # no second report while it writes
    wait_for(window, lambda: not window.tasks.busy)
    assert window.report_button.cget("state") == "normal"
    assert window.status_label.cget("text") == "Report saved: report.pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(target).pages)
    diagnosis = window.current_view.diagnosis
    assert f"Body part: {diagnosis.part}" in text
    assert f"Verdict: {VERDICT_LABELS[diagnosis.verdict]}" in text
    assert diagnosis.model_version in text
    assert "left hand, follow-up" in text
    window.note_entry.delete(0, "end")


def test_unwritable_report_location_is_a_dialog(window, tmp_path):
    window.save_report(tmp_path / "missing_folder" / "report.pdf")
    wait_for(window, lambda: not window.tasks.busy)
    assert not (tmp_path / "missing_folder").exists()
    messages = close_dialogs(window)
    assert len(messages) == 1 and "does not exist" in messages[0]


def test_bad_file_shows_a_dialog_and_the_app_keeps_working(window, tmp_path, xray_paths):
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"%PDF-1.4 not really an image")
    load(window, bad)
    messages = close_dialogs(window)
    assert len(messages) == 1 and "scan.png" in messages[0] and "not an image" in messages[0]
    load(window, xray_paths["elbow_1"])
    window.predict_button.invoke()
    wait_for(window, lambda: not window.predicting)
    assert window.current_view.diagnosis is not None


def test_history_window_and_csv_export(window, tmp_path):
    window.show_history()
    window.update()
    shown = window.history_window.table.get_children()
    assert len(shown) == len(window.history.rows()) >= 4
    target = tmp_path / "history.csv"
    assert window.export_history(target)
    with target.open(newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert len(exported) == len(shown)
    assert {"file_name", "verdict", "model_version", "file_sha256"} <= set(exported[0])
    assert "file_path" not in exported[0]
    window.history_window.destroy()


def test_history_survives_reopening(window):
    count = len(window.history.rows())
    reopened = History(window.history.path)
    assert len(reopened.rows()) == count
    reopened.close()


def test_missing_models_say_which_file(virtual_display, tmp_path):
    from app.gui.window import BoneFracWindow

    models = tmp_path / "models"
    models.mkdir()
    (models / "manifest.json").write_text((MODELS_DIR / "manifest.json").read_text())
    app = BoneFracWindow(models, history_path=tmp_path / "history.sqlite3")
    try:
        wait_for(app, lambda: app.models_error is not None, timeout=60)
        messages = close_dialogs(app)
        assert len(messages) == 1 and "missing" in messages[0] and ".keras" in messages[0]
        assert app.predict_button.cget("state") == "disabled"
    finally:
        app.close()


def test_zoom_fit_and_appearance(window, xray_paths):
    import customtkinter as ctk

    load(window, xray_paths["hand_0"])
    window.zoom_in_button.invoke()
    window.zoom_in_button.invoke()
    assert window.viewer.zoom == pytest.approx(1.5625)
    canvas = window.viewer.canvas
    for _ in range(10):
        window.zoom_in_button.invoke()
    assert window.viewer.zoom == 8.0
    # Only what the canvas shows is drawn, and it is the middle of the image, magnified.
    photo = window.viewer._photo
    assert (photo.width(), photo.height()) == (canvas.winfo_width(), canvas.winfo_height())
    shown = ImageTk.getimage(photo).convert("L")
    image = window.viewer.image.convert("L")
    scale = 8.0 * min(shown.width / image.width, shown.height / image.height)
    half = 16 / scale  # the image pixels under the middle 32x32 shown pixels
    cx, cy = image.width / 2, image.height / 2
    middle = image.crop((round(cx - half), round(cy - half), round(cx + half), round(cy + half)))
    centre = shown.crop((shown.width // 2 - 16, shown.height // 2 - 16, shown.width // 2 + 16, shown.height // 2 + 16))
    assert abs(np.asarray(centre, float).mean() - np.asarray(middle, float).mean()) < 4
    window.focus_force()  # keys go to the focused window, as a user's would (a closed dialog had it)
    window.update()
    window.event_generate("<Control-Key-0>")
    window.update()
    assert window.viewer.zoom == 1.0
    window.appearance_menu.set("Dark")
    window.appearance_menu.cget("command")("Dark")  # what choosing "Dark" in the menu calls
    window.update()
    assert ctk.get_appearance_mode() == "Dark"
    ctk.set_appearance_mode("Light")
