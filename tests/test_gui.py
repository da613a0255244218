"""The real window under a virtual display, driven through Tk events, with the shipped models."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import subprocess
import sys
import time
import tkinter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageTk
from pypdf import PdfReader

from app.gui.text import part_text, probability_text
from app.history import History
from app.words import VERDICT_LABELS
from tests.conftest import MODELS_DIR, REPO


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


def test_each_file_is_read_once_and_the_shown_xray_is_diagnosed(window, xray_paths, monkeypatch):
    """Open and Predict read each file once: the XRay on screen is the one diagnosed, and the
    diagnosis still names the file by the sha256 of its bytes (issue 13)."""
    import app.diagnosis.diagnoser
    import app.gui.window
    from app.xray import read_xray

    reads: list[Path] = []

    def counted_read(path):  # the real reader, counted wherever the app calls it
        reads.append(Path(path))
        return read_xray(path)

    for module in (app.gui.window, app.diagnosis.diagnoser):
        monkeypatch.setattr(module, "read_xray", counted_read)
    paths = [xray_paths["hand_0"], xray_paths["shoulder_1"]]
    load(window, *paths)
    shown = [view.xray for view in window.views]
    window.predict_button.invoke()
    wait_for(window, lambda: not window.predicting)
    assert reads == paths
    for view, xray, path in zip(window.views, shown, paths):
        assert view.xray is xray and view.diagnosis is not None
        assert view.diagnosis.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


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
    load(window, list(routed_paths.values())[-1][0])  # the last part that gives verdicts
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
    assert window.status_label.cget("text") == f"Report saved: report.pdf in {tmp_path}"
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
    assert [d.title() for d in window.dialogs if d.winfo_exists()] == ["The file could not be opened"]
    messages = close_dialogs(window)
    assert len(messages) == 1 and "scan.png" in messages[0] and "not an image" in messages[0]
    load(window, xray_paths["elbow_1"])
    window.predict_button.invoke()
    wait_for(window, lambda: not window.predicting)
    assert window.current_view.diagnosis is not None


def test_history_window_and_csv_export(window, tmp_path):
    window.show_history()
    window.update()
    table = window.history_window.table
    shown = [child for item in table.get_children() for child in (table.get_children(item) or [item])]
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


FILE_DIALOG = ".__tk_filedialog"  # Tk's own file dialog on X11, a child of the main window


def answer_file_dialog(app, answer: Path | None) -> dict[str, str]:
    """Answer the next file dialog as a user would, once it is drawn over the window: note the
    folder it shows and the name it suggests, then type `answer` and press OK (None: Cancel)."""
    seen: dict[str, str] = {}
    entry, buttons = f"{FILE_DIALOG}.contents.f2.ent", f"{FILE_DIALOG}.contents.f2"

    def when_shown() -> None:
        if not (app.tk.call("winfo", "exists", FILE_DIALOG) and app.tk.call("winfo", "ismapped", FILE_DIALOG)):
            app.after(20, when_shown)
            return
        if "drawn" not in seen:  # leave it on screen a moment, as a user reads it
            seen["drawn"] = "yes"
            app.after(300, when_shown)
            return
        seen["folder"] = app.tk.eval("set ::tk::dialog::file::__tk_filedialog(selectPath)")
        seen["file"] = app.tk.call(entry, "get")
        if answer is None:
            app.tk.call(f"{buttons}.cancel", "invoke")
            return
        app.tk.call(entry, "delete", 0, "end")
        app.tk.call(entry, "insert", 0, str(answer))
        app.tk.call(f"{buttons}.ok", "invoke")

    app.after(20, when_shown)
    return seen


def predict_shown(app) -> None:
    app.predict_button.invoke()
    wait_for(app, lambda: not app.predicting)


def test_file_dialogs_start_in_the_last_folder_and_suggest_a_name(window, tmp_path, xray_paths):
    # Resolved: Tk's file dialog answers with the real path where the data folder is a link.
    path = xray_paths["hand_0"].resolve()
    opened = answer_file_dialog(window, path)
    window.open_button.invoke()
    assert opened["folder"] == str(Path.home())  # not the program's folder with .git and .venv
    wait_for(window, lambda: bool(window.views) and window.views[0].path == path and not window.tasks.busy)
    assert window.status_label.cget("text").startswith(f"1 image(s) loaded from {path.parent}")
    predict_shown(window)
    report = answer_file_dialog(window, tmp_path / "hand_report.pdf")
    window.report_button.invoke()
    assert (report["folder"], report["file"]) == (str(path.parent), f"{path.stem}_report.pdf")
    wait_for(window, lambda: not window.tasks.busy)
    assert (tmp_path / "hand_report.pdf").is_file()
    assert window.status_label.cget("text") == f"Report saved: hand_report.pdf in {tmp_path}"
    cancelled = answer_file_dialog(window, None)
    window.screenshot_button.invoke()
    assert (cancelled["folder"], cancelled["file"]) == (str(tmp_path), f"{path.stem}_screenshot.png")
    # Opening and saving remember their folders apart: the next X-ray is looked for where the
    # last one was, not where the report went.
    opening = answer_file_dialog(window, None)
    window.open_button.invoke()
    assert opening["folder"] == str(path.parent) != str(tmp_path)


def test_last_folder_is_remembered_between_sessions(virtual_display, tmp_path, xray_paths):
    from app.gui.window import BoneFracWindow

    path = xray_paths["elbow_0"].resolve()  # as Tk's file dialog answers where the data folder is a link
    first = BoneFracWindow(MODELS_DIR, history_path=tmp_path / "history.sqlite3")
    try:
        answer_file_dialog(first, path)
        first.open_button.invoke()
    finally:
        first.close()
    second = BoneFracWindow(MODELS_DIR, history_path=tmp_path / "history.sqlite3")
    try:
        seen = answer_file_dialog(second, None)
        second.open_button.invoke()
        assert seen["folder"] == str(path.parent)
    finally:
        second.close()


def test_ctrl_q_closes_the_app_as_its_close_button_does(virtual_display, tmp_path):
    from app.gui.window import BoneFracWindow

    app = BoneFracWindow(MODELS_DIR, history_path=tmp_path / "history.sqlite3")
    try:
        app.update()
        app.event_generate("<Control-q>")
        with pytest.raises(tkinter.TclError):  # the window is gone
            app.winfo_exists()
    finally:
        with contextlib.suppress(tkinter.TclError):
            app.close()  # only if Ctrl+Q left it open


def test_screenshot_is_the_window_as_clicked_not_the_save_dialog(window, tmp_path, xray_paths):
    from app.gui.screenshot import grab_window

    load(window, xray_paths["hand_1"])
    for _ in range(10):
        window.update()
        time.sleep(0.02)
    before = np.asarray(grab_window(window).convert("RGB"), dtype=int)
    target = tmp_path / "shot.png"
    answered = answer_file_dialog(window, target)
    window.screenshot_button.invoke()
    assert answered["drawn"] == "yes"  # the dialog was on screen, over the window
    with Image.open(target) as shot:
        saved = np.asarray(shot.convert("RGB"), dtype=int)
    assert saved.shape == before.shape
    assert np.abs(saved - before).mean() < 1.0  # what the user saw, not a black rectangle
    assert (np.abs(saved - before).max(axis=2) > 40).mean() < 0.002


def test_note_belongs_to_the_study_on_screen(window, tmp_path, xray_paths):
    load(window, xray_paths["hand_0"])
    window.note_entry.insert(0, "patient A")
    predict_shown(window)
    assert window.history.rows()[0].note == "patient A"
    # Changed after Predict: the report and the history say the same.
    window.note_entry.delete(0, "end")
    window.note_entry.insert(0, "patient A, follow-up")
    target = tmp_path / "note.pdf"
    window.save_report(target)
    wait_for(window, lambda: not window.tasks.busy)
    assert "patient A, follow-up" in "\n".join(page.extract_text() for page in PdfReader(target).pages)
    assert window.history.rows()[0].note == "patient A, follow-up"
    # Another patient's image: the note does not follow.
    load(window, xray_paths["elbow_1"])
    assert window.note_entry.get() == ""
    predict_shown(window)
    assert window.history.rows()[0].note == ""
    assert window.history.rows()[1].note == "patient A, follow-up"


def test_open_file_is_named_with_its_folder(window, xray_paths):
    path = xray_paths["shoulder_0"]
    load(window, path)
    assert window.file_label.cget("text") == f"{path.name}   ({path.parent})"
    assert window.title() == f"{path.name} — bonefrac"
    load(window, xray_paths["elbow_0"], path)
    window.thumbnail_buttons[1].invoke()
    assert window.file_label.cget("text") == f"View 2 of 2: {path.name}   ({path.parent})"


def test_a_long_folder_is_shortened_never_cut_by_the_view_controls(window, xray_paths, tmp_path):
    """The file's line has the width of the image; a folder longer than that loses its middle,
    the file name and the nearest folder stay whole."""
    folder = tmp_path.joinpath(*(f"department_of_radiology_{n}" for n in range(8)), "exports")
    folder.mkdir(parents=True)
    path = folder / "IMG_0001_left_hand.jpg"
    path.write_bytes(xray_paths["hand_0"].read_bytes())
    load(window, path)
    window.update()
    label, switch = window.file_label, window.outlines_switch
    text = label.cget("text")
    assert text.startswith(f"{path.name}   (") and text.endswith("/exports)") and "…" in text
    assert window.file_font.measure(text) <= label.winfo_width()  # all of it readable
    # Nothing of the view controls over it: the controls are on a line of their own below.
    assert label.winfo_rooty() + label.winfo_height() <= switch.winfo_rooty()


def image_place(app) -> tuple[tuple[int, int], tuple[int, ...]]:
    """The canvas' size and where the picture lies on it."""
    canvas = app.viewer.canvas
    (item,) = [item for item in canvas.find_all() if canvas.type(item) == "image"]
    return (canvas.winfo_width(), canvas.winfo_height()), tuple(canvas.bbox(item))


def test_heatmap_legend_shows_while_drawn_and_the_image_never_jumps(window, routed_paths):
    """The legend words the kind of map the model gave (a probability map or a relative CAM); its
    place under the image is kept, so neither Predict nor the Heatmap switch moves the image."""
    from app.words import heatmap_hint, heatmap_legend

    load(window, next(iter(routed_paths.values()))[0])  # an image that gets a verdict and a heatmap
    window.update()
    before = image_place(window)
    assert window.legend.text_label.cget("text") == heatmap_hint(None) and not window.legend.scale.winfo_ismapped()
    predict_shown(window)
    window.update()
    assert image_place(window) == before
    assert not window.legend.scale.winfo_ismapped()
    assert window.legend.text_label.cget("text") == heatmap_hint(window.current_view.diagnosis)
    assert "switch on Heatmap" in heatmap_hint(window.current_view.diagnosis)
    window.heatmap_switch.toggle()
    window.update()
    assert window.legend.scale.winfo_ismapped() and window.viewer.heatmap is not None
    assert image_place(window) == before  # the heatmap came, the image stayed
    kind = window.current_view.diagnosis.heatmap_kind
    low, high, text = heatmap_legend(kind)
    assert kind and window.legend.text_label.cget("text") == text
    assert text.startswith("Not a fracture outline")  # first: a narrow window cuts the line's end
    assert (window.legend.low_label.cget("text"), window.legend.high_label.cget("text")) == (low, high)
    window.heatmap_switch.toggle()
    window.update()
    assert not window.legend.scale.winfo_ismapped() and image_place(window) == before


def test_layout_idle_bar_thumbnails_and_theme_label(window, xray_paths):
    load(window, xray_paths["hand_0"])
    window.update()
    assert not window.progress.winfo_ismapped()  # idle: no bar, so no blue stub
    assert not window.thumbnails.winfo_ismapped()  # one image: no empty strip
    single = window.viewer.canvas.winfo_height()
    window.load_paths([xray_paths["elbow_0"], xray_paths["elbow_1"]])
    window.update()
    assert window.progress.winfo_ismapped()  # busy: the indicator shows
    wait_for(window, lambda: len(window.views) == 2 and not window.tasks.busy)
    window.update()
    assert window.thumbnails.winfo_ismapped() and len(window.thumbnail_buttons) == 2
    load(window, xray_paths["hand_0"])
    window.update()
    assert not window.thumbnails.winfo_ismapped()
    assert window.viewer.canvas.winfo_height() == single  # the image area is whole again
    assert window.theme_label.cget("text") == "Theme"
    assert window.theme_label.winfo_ismapped()
    assert window.theme_label.winfo_rootx() < window.appearance_menu.winfo_rootx()


def test_every_toolbar_button_stays_whole_down_to_the_smallest_window(window):
    """In a window too narrow for one row the saving buttons move to a second row: none is cut off."""
    buttons = [
        window.open_button,
        window.folder_button,
        window.predict_button,
        window.heatmap_switch,
        window.screenshot_button,
        window.report_button,
        window.dicom_button,
        window.history_button,
        window.about_button,
        window.theme_label,
        window.appearance_menu,
    ]
    smallest = "x".join(str(side) for side in tkinter.Tk.wm_minsize(window))  # CTk only sets it
    try:
        for size, rows in (("1180x780", 1), (smallest, 2)):
            window.geometry(size)
            wait_for(window, lambda rows=rows: window.toolbar_rows == rows, timeout=10)
            window.update()
            left, right = window.winfo_rootx(), window.winfo_rootx() + window.winfo_width()
            for button in buttons:
                assert button.winfo_ismapped(), (size, button)
                assert left <= button.winfo_rootx() and button.winfo_rootx() + button.winfo_width() <= right, (
                    size,
                    button,
                )
            toolbar_bottom = window.toolbar.winfo_rooty() + window.toolbar.winfo_height()
            assert window.file_label.winfo_rooty() >= toolbar_bottom  # the image area starts below it
    finally:
        window.geometry("1180x780")
        window.update()


def test_the_side_panel_scrolls_with_the_wheel_where_the_window_is_short(window, xray_paths):
    """At the smallest window a result's last lines (the model's figures) are below the fold: the
    wheel over the panel brings them up (X11 sends the wheel as buttons 4 and 5)."""
    load(window, xray_paths["hand_0"])
    predict_shown(window)  # a whole result in the panel, whatever the tests before left there
    canvas = window.panel._parent_canvas  # the scrolled canvas: CTk has no public view of it
    try:
        window.geometry("x".join(str(side) for side in tkinter.Tk.wm_minsize(window)))
        wait_for(window, lambda: canvas.yview()[1] < 1.0, timeout=10)  # more than fits
        assert canvas.yview()[0] == 0.0
        for _ in range(20):
            window.part_label.event_generate("<Button-5>", x=5, y=5)
            window.update()
        assert canvas.yview()[0] > 0.0
    finally:
        canvas.yview_moveto(0.0)
        window.geometry("1180x780")
        window.update()


def test_verdict_says_in_words_what_its_models_auroc_means(window, routed_paths, tmp_path):
    """Each part that gives verdicts: the panel and the report say what its test AUROC (and its
    interval, once the manifest has one) means; the words for each figure are in test_report_figures."""
    from app.words import auroc_text, skill_words

    assert routed_paths, "no part of the shipped models gives verdicts"
    for part, paths in routed_paths.items():
        metrics = window.diagnoser.manifest.entries[f"fracture_{part}"].info["metrics"]
        load(window, paths[0])
        predict_shown(window)
        shown = window.skill_label.cget("text")
        assert f"AUROC {auroc_text(metrics)}: {skill_words(metrics)}." in shown
        window.save_report(tmp_path / f"{part}.pdf")
        wait_for(window, lambda: not window.tasks.busy)
        pages = PdfReader(tmp_path / f"{part}.pdf").pages
        assert " ".join(shown.split()) in " ".join(" ".join(page.extract_text() for page in pages).split())


def assert_over(child, main) -> None:
    """`child` is centred on the main window (within a few pixels), wherever that is."""
    centre = (child.winfo_rootx() + child.winfo_width() // 2, child.winfo_rooty() + child.winfo_height() // 2)
    main_centre = (main.winfo_rootx() + main.winfo_width() // 2, main.winfo_rooty() + main.winfo_height() // 3)
    assert abs(centre[0] - main_centre[0]) <= 30, (centre, main_centre)
    assert main.winfo_rooty() < centre[1] < main.winfo_rooty() + main.winfo_height()


def test_history_window_reads_well_and_reopens_the_stored_result(window):
    import tkinter.font as tkfont

    from app.diagnosis.value import Verdict
    from app.gui.history_window import COLUMNS, HEADINGS
    from app.history import local_time

    window.show_history()
    history = window.history_window
    window.update()
    assert_over(history, window)  # not at the screen's corner
    table = history.table
    assert "Fracture probability" in HEADINGS and "Fracture p" not in HEADINGS
    rows = window.history.rows()
    for row in rows:
        values = table.item(f"row-{row.id}", "values")
        assert values[0] == local_time(row.created_utc) and "+00:00" not in values[0]
    # Dates and model versions are never cut.
    measure = tkfont.nametofont("TkDefaultFont").measure
    for name in ("time", "model_version", "verdict"):
        index = COLUMNS.index(name)
        widest = max(measure(str(table.item(f"row-{row.id}", "values")[index])) for row in rows)
        assert table.column(name, "width") >= widest
    # A study's views sit under one row.
    studies = [item for item in table.get_children() if item.startswith("study-")]
    assert studies
    study_rows = [row for row in rows if f"study-{row.study_id}" == studies[0]]
    assert len(table.get_children(studies[0])) == len(study_rows) >= 2
    # The study's row carries the study verdict it was predicted with (the window's study panel).
    stored = study_rows[0]
    assert stored.study_verdict is not None and {row.study_verdict for row in study_rows} == {stored.study_verdict}
    shown = table.item(studies[0], "values")
    assert shown[COLUMNS.index("verdict")] == VERDICT_LABELS[Verdict(stored.study_verdict)]
    probability = "" if stored.study_probability is None else f"{stored.study_probability:.2f}"
    assert shown[COLUMNS.index("probability")] == probability
    # Reopening a view predicted in this session shows its whole result again (no Predict needed).
    single = next(row for row in rows if row.study_id is None)
    table.selection_set(f"row-{single.id}")
    before = window.generation
    history.reopen_button.invoke()
    wait_for(window, lambda: window.generation == before + 1 and not window.tasks.busy)
    assert window.verdict_label.cget("text") == VERDICT_LABELS[Verdict(single.verdict)]
    diagnosis = window.current_view.diagnosis
    assert diagnosis is window.session_results[single.id] and window.current_view.history_id == single.id
    assert window.probability_label.cget("text") == probability_text(diagnosis)
    assert window.dicom_button.cget("state") == "normal"
    assert window.note_entry.get() == single.note
    # Escape closes it, as does its Close button.
    history.event_generate("<Escape>")
    window.update()
    assert not history.winfo_exists()
    window.show_about()
    about = window.about_window
    window.update()
    assert_over(about, window)
    about.close_button.invoke()
    window.update()
    assert not about.winfo_exists()
    # A view reopened in a later session shows its stored result, said to be stored.
    from app.gui.window import BoneFracWindow

    later = BoneFracWindow(MODELS_DIR, history_path=window.history.path)
    try:
        later.reopen([single])
        wait_for(later, lambda: bool(later.views) and not later.loading)
        assert later.current_view.diagnosis is None and later.dicom_button.cget("state") == "disabled"
        assert later.verdict_label.cget("text") == VERDICT_LABELS[Verdict(single.verdict)]
        assert later.probability_label.cget("text").startswith(f"Stored result from {local_time(single.created_utc)}")
    finally:
        later.close()


def test_history_table_follows_dark_mode(window):
    import customtkinter as ctk

    from app.gui.screenshot import grab_window

    try:
        for mode, dark in (("Dark", True), ("Light", False)):
            ctk.set_appearance_mode(mode)
            window.show_history()
            for _ in range(10):
                window.update()
                time.sleep(0.02)
            table = np.asarray(grab_window(window.history_window.table).convert("L"), dtype=float)
            assert (table.mean() < 80) if dark else (table.mean() > 170), (mode, table.mean())
            window.history_window.destroy()
    finally:
        ctk.set_appearance_mode("Light")


def test_window_opens_files_given_at_start(virtual_display, tmp_path, xray_paths):
    from app.gui.window import BoneFracWindow

    path, missing = xray_paths["hand_1"], tmp_path / "gone.png"
    app = BoneFracWindow(MODELS_DIR, history_path=tmp_path / "history.sqlite3", open_paths=[path, missing])
    try:
        wait_for(app, lambda: bool(app.views) and not app.tasks.busy)
        assert [view.path for view in app.views] == [path]
        messages = close_dialogs(app)
        assert len(messages) == 1 and "gone.png" in messages[0] and "\n" not in messages[0]
    finally:
        app.close()


def test_bonefrac_command_opens_its_file_arguments(virtual_display, tmp_path, xray_paths, monkeypatch):
    """`bonefrac FILE` as a file manager's "Open with" runs it: the window opens with the file."""
    from Xlib import display as xdisplay

    if not os.environ.get("XAUTHORITY") and not (Path.home() / ".Xauthority").is_file():
        (tmp_path / "Xauthority").write_bytes(b"")  # python-xlib insists on a file; our Xvfb needs no cookie
        monkeypatch.setenv("XAUTHORITY", str(tmp_path / "Xauthority"))

    path = xray_paths["elbow_1"]
    command = [sys.executable, "-m", "app", "--models-dir", str(MODELS_DIR), str(path)]
    env = {**os.environ, "BONEFRAC_HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    screen = xdisplay.Display(virtual_display)
    wanted = f"{path.name} — bonefrac"
    try:
        deadline = time.monotonic() + 120
        while wanted not in window_titles(screen) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert wanted in window_titles(screen), process.stderr.read().decode() if process.poll() else ""
    finally:
        process.terminate()
        process.wait(timeout=30)
        screen.close()


def window_titles(screen) -> set[str]:
    """The titles of the top-level windows on the display (UTF-8, as Tk sets them)."""
    name, utf8 = screen.intern_atom("_NET_WM_NAME"), screen.intern_atom("UTF8_STRING")
    titles = set()
    for child in screen.screen().root.query_tree().children:
        prop = child.get_full_property(name, utf8)
        if prop is not None:
            value = prop.value
            titles.add(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
    return titles


# ---------- the viewer's display adjustments (issue 15): the view changes, the XRay never ----------


def right_drag(app, dx: int, dy: int) -> None:
    """Drag with the right mouse button across the image, as a user does for window/level."""
    canvas = app.viewer.canvas
    x, y = canvas.winfo_width() // 2, canvas.winfo_height() // 2
    canvas.event_generate("<ButtonPress-3>", x=x, y=y)
    for step in range(1, 5):  # a few motion events on the way, as the mouse sends them
        canvas.event_generate("<B3-Motion>", x=x + dx * step // 4, y=y + dy * step // 4)
    canvas.event_generate("<ButtonRelease-3>", x=x + dx, y=y + dy)
    app.update()


def shown_array(app) -> np.ndarray:
    return np.asarray(app.viewer.image, dtype=np.int16)


def on_screen(app) -> np.ndarray:
    """The pixels drawn on the canvas (fitted to it), in grey."""
    return np.asarray(ImageTk.getimage(app.viewer._photo).convert("L"), dtype=float)


def press(app, key: str) -> None:
    app.focus_force()  # keys go to the focused window, as a user's would
    app.update()
    app.event_generate(key)
    app.update()


def test_right_drag_changes_brightness_and_contrast_of_the_view(window, xray_paths):
    load(window, xray_paths["hand_1"])
    xray = window.current_view.xray
    plain, plain_screen = shown_array(window), on_screen(window)
    assert np.array_equal(plain, xray.as_uint8())  # opened as read
    right_drag(window, 0, -80)  # up: brighter
    brighter = shown_array(window)
    assert window.viewer.adjustment.level == pytest.approx(0.3)
    assert np.abs(brighter - np.rint(np.clip(xray.pixels + 0.2, 0, 1) * 255)).max() <= 1
    assert brighter.mean() > plain.mean() + 30 and on_screen(window).mean() > plain_screen.mean() + 30
    right_drag(window, 0, 80)  # and back down
    right_drag(window, -200, 0)  # left: narrower window, more contrast
    assert window.viewer.adjustment.width == pytest.approx(0.5)
    contrast = shown_array(window)
    assert np.abs(contrast - np.rint(np.clip((xray.pixels - 0.25) / 0.5, 0, 1) * 255)).max() <= 1
    assert contrast.std() > plain.std() * 1.3 and on_screen(window).std() > plain_screen.std() * 1.3
    assert window.viewer.caption.startswith("Level 50% · Width 50%")
    press(window, "<Escape>")
    assert np.array_equal(shown_array(window), plain) and window.viewer.caption == ""


def test_invert_rotate_flip_and_reset_by_keys_and_buttons(window, xray_paths):
    load(window, xray_paths["elbow_1"])
    plain = shown_array(window)
    press(window, "<Key-i>")
    assert np.abs(shown_array(window) - (255 - plain)).max() <= 1
    window.invert_button.invoke()
    assert np.array_equal(shown_array(window), plain)
    press(window, "<Key-r>")
    assert np.array_equal(shown_array(window), np.rot90(plain, -1))
    press(window, "<Key-h>")
    assert np.array_equal(shown_array(window), np.fliplr(np.rot90(plain, -1)))
    window.rotate_button.invoke()  # turns what is on screen, mirrored or not
    assert np.array_equal(shown_array(window), np.rot90(np.fliplr(np.rot90(plain, -1)), -1))
    window.flip_button.invoke()
    assert np.array_equal(shown_array(window), plain)
    window.rotate_button.invoke()
    window.rotate_button.invoke()
    assert np.array_equal(shown_array(window), np.rot90(plain, 2))
    assert window.viewer.caption == "rotated 180° — view only, Esc resets"
    press(window, "<Key-0>")
    assert np.array_equal(shown_array(window), plain)
    # Ctrl+0 stays Fit, Ctrl+R stays the report: the plain keys do not fire with them.
    window.rotate_button.invoke()
    press(window, "<Control-Key-0>")
    assert window.viewer.adjustment.quarter_turns == 1
    window.reset_view_button.invoke()
    assert np.array_equal(shown_array(window), plain)
    # Typing the note is typing, not adjusting the view.
    entry = window.note_entry._entry
    entry.focus_force()
    window.update()
    for key in ("<Key-i>", "<Key-r>", "<Key-h>", "<Key-0>", "<Escape>"):
        entry.event_generate(key)
    window.update()
    assert window.viewer.adjustment.is_original
    window.note_entry.delete(0, "end")


def test_heatmap_stays_on_its_place_and_zoom_follows_rotation(window, routed_paths):
    from app.diagnosis.heatmap import overlay

    load(window, list(routed_paths.values())[-1][0])  # the last part that gives verdicts
    predict_shown(window)
    view = window.current_view
    window.heatmap_switch.select()
    window.render_image()
    window.update()
    painted = np.asarray(overlay(view.xray, view.diagnosis.heatmap), dtype=np.int16)
    assert np.array_equal(shown_array(window), painted)
    window.rotate_button.invoke()
    window.flip_button.invoke()
    assert np.array_equal(shown_array(window), np.fliplr(np.rot90(painted, -1)))
    window.heatmap_switch.deselect()
    window.reset_view_button.invoke()
    # Zoomed in and panned: after a turn the same part of the image is in the middle, turned.
    for _ in range(2):
        window.zoom_in_button.invoke()
    canvas = window.viewer.canvas
    canvas.event_generate("<ButtonPress-1>", x=200, y=200)
    canvas.event_generate("<B1-Motion>", x=290, y=150)
    canvas.event_generate("<ButtonRelease-1>", x=290, y=150)
    window.update()
    assert window.viewer.offset == (90.0, -50.0)

    def middle() -> np.ndarray:
        """What the panel shows around its middle (the drawn part of the picture may start inside it)."""
        image_item = next(item for item in canvas.find_all() if canvas.type(item) == "image")
        left, top = canvas.coords(image_item)
        cx, cy = round(canvas.winfo_width() / 2 - left), round(canvas.winfo_height() / 2 - top)
        return on_screen(window)[cy - 80 : cy + 80, cx - 80 : cx + 80]

    def scale() -> float:
        """Screen pixels per pixel of the shown picture."""
        width, height = window.viewer.image.size
        return window.viewer.zoom * min(canvas.winfo_width() / width, canvas.winfo_height() / height)

    def centre_point() -> tuple[float, float]:
        """The point of the shown picture under the middle of the panel."""
        width, height = window.viewer.image.size
        return width / 2 - window.viewer.offset[0] / scale(), height / 2 - window.viewer.offset[1] / scale()

    before, (x, y), magnification = middle(), centre_point(), scale()
    height = window.viewer.image.height
    window.rotate_button.invoke()
    assert scale() == pytest.approx(magnification)  # zoomed in, it stays as magnified
    assert centre_point() == pytest.approx((height - y, x), abs=0.5)  # clockwise: (x, y) -> (h - y, x)
    turned = middle()
    assert np.abs(turned - np.rot90(before, -1)).mean() < 3 < np.abs(turned - before).mean()
    window.flip_button.invoke()
    assert np.abs(middle() - np.fliplr(turned)).mean() < 3
    window.reset_view_button.invoke()
    assert window.viewer.zoom == 1.0 and window.viewer.offset == (0.0, 0.0)


def test_diagnosis_reads_the_original_pixels_whatever_the_view(window, routed_paths, tmp_path):
    from app.report.content import ORIGINAL_PIXELS_LINE

    load(window, routed_paths["hand"][0] if "hand" in routed_paths else next(iter(routed_paths.values()))[0])
    predict_shown(window)
    view = window.current_view
    xray, before, first = view.xray, view.xray.pixels.copy(), view.diagnosis
    right_drag(window, -150, 60)
    window.invert_button.invoke()
    window.rotate_button.invoke()
    window.flip_button.invoke()
    adjusted = window.viewer.adjustment
    predict_shown(window)
    again = window.current_view.diagnosis
    assert window.current_view.xray is xray and np.array_equal(xray.pixels, before)
    assert again is not first
    assert again.fracture_probability == first.fracture_probability
    assert again.part_probabilities == first.part_probabilities and again.verdict == first.verdict
    assert np.array_equal(again.heatmap, first.heatmap)
    assert window.viewer.adjustment == adjusted  # the result arriving does not undo the view
    window.save_report(tmp_path / "adjusted.pdf")
    wait_for(window, lambda: not window.tasks.busy)
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(tmp_path / "adjusted.pdf").pages).split())
    assert ORIGINAL_PIXELS_LINE in text
    window.reset_view_button.invoke()


def test_dicom_opens_at_the_window_in_its_header(window, tmp_path, xray_paths):
    from tests.dicom_files import write_dicom

    source = read_gray(xray_paths["hand_0"])
    raw = source.astype(np.uint16) * 16  # 12-bit values spread over 0..4080
    path = write_dicom(tmp_path / "windowed.dcm", raw, bits=16, WindowCenter=1600, WindowWidth=1600)
    load(window, path)
    # DICOM PS3.3 C.11.2.1.2.1, the linear window, from the header's centre and width.
    expected = np.rint(np.clip((raw - 1599.5) / 1599 + 0.5, 0, 1) * 255)
    shown = shown_array(window)
    assert np.abs(shown - expected).max() <= 1
    assert np.abs(shown - np.rint(raw / raw.max() * 255)).mean() > 10  # not the full range
    assert window.viewer.caption == "Window: the DICOM file's own, C 1600 W 1600"
    right_drag(window, 100, 0)
    assert window.viewer.caption.startswith("Level 50% · Width 125%")
    press(window, "<Escape>")
    assert np.abs(shown_array(window) - expected).max() <= 1
    assert window.viewer.caption == "Window: the DICOM file's own, C 1600 W 1600"


def read_gray(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


def test_plain_plus_and_minus_keys_zoom_except_while_typing(window, xray_paths):
    load(window, xray_paths["hand_0"])
    window.viewer.fit()
    window.update()
    start = window.viewer.zoom
    window.focus_force()
    window.event_generate("<Key-plus>")
    window.update()
    assert window.viewer.zoom == pytest.approx(start * 1.25)
    window.event_generate("<Key-KP_Subtract>")
    window.update()
    assert window.viewer.zoom == pytest.approx(start)
    window.note_entry.focus_set()
    window.update()
    window.note_entry.event_generate("<Key-plus>")
    window.update()
    assert window.viewer.zoom == pytest.approx(start)  # typing a "+" in the note zooms nothing


def test_the_note_stays_above_the_long_model_text(window):
    """The model summary is the longest text in the panel: it comes last, so it never pushes the
    note field and the identifiers setting out of the window."""
    rows = {w: int(w.grid_info()["row"]) for w in (window.note_entry, window.identifiers_switch, window.model_label)}
    assert rows[window.note_entry] < rows[window.identifiers_switch] < rows[window.model_label]
