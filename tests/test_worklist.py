"""The worklist under a virtual display: a folder of real X-rays (JPEG, PNG and DICOM made from
../shared/data/xray) opened, grouped into studies, predicted, sorted, cancelled."""

from __future__ import annotations

import shutil
import time
import tkinter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from app.words import VERDICT_LABELS, confidence_text
from tests.conftest import MODELS_DIR
from tests.dicom_files import write_dicom
from tests.test_gui import wait_for


@pytest.fixture(scope="module")
def window(virtual_display, tmp_path_factory):
    from app.gui.window import BoneFracWindow

    home = tmp_path_factory.mktemp("home")
    app = BoneFracWindow(MODELS_DIR, history_path=home / "history.sqlite3")
    wait_for(app, lambda: app.diagnoser is not None or app.models_error is not None)
    assert app.models_error is None
    yield app
    app.close()


def dicom_from(source: Path, path: Path, study_uid: str) -> Path:
    with Image.open(source) as image:
        pixels = np.asarray(image.convert("L")).astype(np.uint16) * 16
    return write_dicom(path, pixels, BitsStored=12, StudyInstanceUID=study_uid, BodyPartExamined="SHOULDER")


@pytest.fixture(scope="module")
def clinic_folder(xray_paths, tmp_path_factory) -> dict[str, list[Path]]:
    """Two folders of JPEG/PNG, a damaged PNG among them, and DICOM files of two studies (one
    of two views, in different subfolders: grouped by StudyInstanceUID, not by folder)."""
    root = tmp_path_factory.mktemp("clinic") / "ward"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "dicom" / "series1").mkdir(parents=True)
    (root / "dicom" / "series2").mkdir()
    a_files = [root / "a" / "1_hand.jpg", root / "a" / "2_hand.png", root / "a" / "3_broken.png"]
    shutil.copy(xray_paths["hand_1"], a_files[0])
    with Image.open(xray_paths["hand_0"]) as image:
        image.save(a_files[1])
    a_files[2].write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)  # a PNG signature, then garbage
    b_files = [root / "b" / "elbow.jpg"]
    shutil.copy(xray_paths["elbow_1"], b_files[0])
    shoulder_uid, elbow_uid = generate_uid(), generate_uid()
    shoulder = [
        dicom_from(xray_paths["shoulder_1"], root / "dicom" / "series1" / "IM0001", shoulder_uid),
        dicom_from(xray_paths["shoulder_0"], root / "dicom" / "series2" / "IM0002", shoulder_uid),
    ]
    elbow = [dicom_from(xray_paths["elbow_0"], root / "dicom" / "series2" / "IM0003", elbow_uid)]
    return {"root": [root], "a": a_files, "b": b_files, "shoulder": shoulder, "elbow": elbow}


def rows_by_files(worklist) -> dict[tuple[Path, ...], object]:
    return {tuple(row.study.files): row for row in worklist.rows.values()}


def open_by_drop(window, folder: Path):
    """A folder dropped on the window, as tkdnd hands it over (a Tcl list of paths)."""
    event = tkinter.Event()
    event.data = window.tk.call("list", str(folder))
    window._on_drop(event)
    worklist = window.worklist
    wait_for(window, lambda: worklist.grouped)
    return worklist


def click_heading(worklist, column: str) -> None:
    """A real mouse click on a column heading."""
    table = worklist.table
    worklist.update()
    x = sum(table.column(name, "width") for name in table["columns"][: table["columns"].index(column)]) + 20
    y = 8
    assert table.identify_region(x, y) == "heading"
    table.event_generate("<ButtonPress-1>", x=x, y=y)
    table.event_generate("<ButtonRelease-1>", x=x, y=y)
    worklist.update()


def test_a_folder_is_grouped_predicted_sorted_and_kept_in_the_history(window, clinic_folder):
    worklist = open_by_drop(window, clinic_folder["root"][0])
    rows = rows_by_files(worklist)
    studies = [tuple(clinic_folder[name]) for name in ("a", "b", "shoulder", "elbow")]
    assert sorted(rows, key=str) == sorted(studies, key=str)  # DICOM by study UID, the others by folder
    assert rows[studies[0]].values()[:2] == ("ward/a", "3")
    assert rows[studies[2]].values()[2] == "Shoulder"  # from the DICOM header, before any prediction
    assert "DICOM study" in rows[studies[2]].study.label

    # The keyboard walks the list; nothing predicted yet.
    table = worklist.table
    table.focus_force()
    worklist.update()
    first = table.selection()[0]
    table.event_generate("<Down>")
    worklist.update()
    assert table.selection()[0] == table.get_children()[1] != first

    worklist.predict_button.invoke()
    assert worklist.running and worklist.cancel_button.cget("state") == "normal"
    wait_for(window, lambda: not worklist.running)
    assert all(row.predicted for row in rows.values())
    assert worklist.progress_label.cget("text") == "7 of 7"

    # The damaged PNG is one line in its row; the other views of that study are diagnosed.
    broken = rows[studies[0]]
    assert broken.result is not None and len(broken.result.views) == 2
    assert broken.problem_line().startswith("3_broken.png: ") and broken.values()[5] == broken.problem_line()
    assert "1 file(s) could not be diagnosed" in worklist.status_label.cget("text")
    item = next(item for item, row in worklist.rows.items() if row is broken)
    table.selection_set(item)
    worklist.update()
    assert worklist.status_label.cget("text") == broken.problem_line()  # in full, where the column cuts it

    # The study verdict is the engine's, for the DICOM study of two views.
    shoulder = rows[studies[2]]
    expected = window.diagnoser.aggregate_study(
        [outcome.diagnosis for outcome in window.diagnoser.diagnose_many(studies[2], with_heatmap=False)]
    )
    assert shoulder.result.fracture_probability == pytest.approx(expected.fracture_probability, abs=1e-5)
    assert shoulder.values()[3] == VERDICT_LABELS[expected.verdict]

    # Most suspicious first after prediction; a click on a heading sorts by it, a second turns it round.
    def probabilities() -> list[float]:
        return [-1.0 if row.probability is None else row.probability for row in worklist.shown_order()]

    assert probabilities() == sorted(probabilities(), reverse=True)
    click_heading(worklist, "study")
    labels = [row.study.label for row in worklist.shown_order()]
    assert labels == sorted(labels, key=str.lower)
    click_heading(worklist, "probability")
    assert probabilities() == sorted(probabilities(), reverse=True)
    click_heading(worklist, "probability")
    assert probabilities() == sorted(probabilities())

    # Each study is in the history as a Predict gives it: one study id for the views of a study.
    history = {Path(row.file_path): row for row in window.history.rows()}
    diagnosed = [path for study in studies for path in study if path.name != "3_broken.png"]
    assert set(history) == set(diagnosed)
    for study in (studies[0][:2], studies[2]):
        ids = {history[path].study_id for path in study}
        assert len(ids) == 1 and None not in ids
    assert history[studies[1][0]].study_id is None
    assert {history[path].verdict for path in studies[2]} == {view.verdict.value for view in shoulder.result.views}

    # Enter opens the selected study in the main window, with its stored results.
    item = next(item for item, row in worklist.rows.items() if row is shoulder)
    table.selection_set(item)
    table.focus(item)
    table.focus_set()
    worklist.update()
    before = window.generation
    table.event_generate("<Return>")
    wait_for(window, lambda: window.generation == before + 1 and not window.loading)
    assert [view.path for view in window.views] == list(studies[2])
    assert all(view.stored is not None for view in window.views)
    worklist.close_button.invoke()
    window.update()
    assert not worklist.winfo_exists()


def test_cancel_keeps_the_rest_unpredicted_and_the_window_answers(window, xray_paths, tmp_path):
    """40 files in 10 folders: Cancel once two chunks are done; the chunk running then finishes,
    the rest is skipped, and the window answers every key press meanwhile."""
    root = tmp_path / "many"
    sources = [xray_paths[key] for key in ("hand_0", "hand_1", "elbow_0", "elbow_1")]
    for study in range(10):
        (root / f"patient{study:02d}").mkdir(parents=True)
        for view, source in enumerate(sources):
            shutil.copy(source, root / f"patient{study:02d}" / f"view{view}.jpg")
    history_before = len(window.history.rows())
    window.open_folder(root)
    worklist = window.worklist
    wait_for(window, lambda: worklist.grouped)
    assert len(worklist.rows) == 10

    table = worklist.table
    table.focus_force()
    worklist.predict_button.invoke()
    presses = moved = 0
    longest_gap, last = 0.0, time.monotonic()
    while worklist.running:  # the Tk loop keeps turning, and answering keys, while the worker diagnoses
        if worklist.done_files >= 16 and worklist.cancel_button.cget("state") == "normal":
            worklist.cancel_button.invoke()  # during the third chunk of 8 files
            assert worklist.cancel_button.cget("state") == "disabled"
        before = table.index(table.selection()[0])
        table.event_generate("<Down>" if before < len(table.get_children()) - 1 else "<Up>")
        window.update()
        presses += 1
        moved += table.index(table.selection()[0]) != before
        now = time.monotonic()
        longest_gap, last = max(longest_gap, now - last), now
        time.sleep(0.02)
    assert presses >= 5 and moved == presses and longest_gap < 2.0
    predicted = [row for row in worklist.rows.values() if row.predicted]
    assert 6 <= len(predicted) < 10  # the chunk that was running finished; the rest was skipped
    assert all(row.result is not None for row in predicted)
    assert worklist.progress_label.cget("text") == f"{4 * len(predicted)} of 40"
    assert worklist.status_label.cget("text").startswith("Cancelled")
    assert worklist.predict_button.cget("state") == "normal"  # the rest can still be predicted
    assert len(window.history.rows()) == history_before + 4 * len(predicted)
    worklist.destroy()


# ---------- a new user's walkthrough: mixed folders, results in full, the window in front ----------


def in_front(upper, lower) -> bool:
    """Whether toplevel `upper` is stacked above `lower` on the X server (Tk's `wm stackorder`)."""
    upper.update()
    return bool(upper.getboolean(upper.tk.call("wm", "stackorder", str(upper), "isabove", str(lower))))


def press_enter_on(worklist, row) -> None:
    table = worklist.table
    item = next(item for item, shown in worklist.rows.items() if shown is row)
    table.selection_set(item)
    table.focus(item)
    table.focus_force()
    worklist.update()
    table.event_generate("<Return>")


@pytest.fixture
def exports(routed_paths, tmp_path) -> Path:
    """A folder of unrelated exports: X-rays of two parts (the first two whose fracture models give
    verdicts), each confidently its part, one JPEG and one PNG."""
    if len(routed_paths) < 2:
        pytest.fail(f"a mixed folder needs two parts with verdicts; the models give them for {list(routed_paths)}")
    first, second = list(routed_paths)[:2]
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(routed_paths[first][0], folder / f"a_{first}.jpg")
    with Image.open(routed_paths[second][0]) as image:
        image.save(folder / f"b_{second}.png")
    return folder


def export_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.is_file())


def export_parts(folder: Path) -> list[str]:
    """The parts the exports were chosen as (their names say), sorted."""
    return sorted(path.stem.split("_", 1)[1] for path in export_files(folder))


def test_a_folder_of_different_parts_is_as_suspicious_as_its_worst_view(window, exports):
    window.settings.one_study_per_image = False
    worklist = open_by_drop(window, exports)
    assert not worklist.per_image_switch.get() and len(worklist.rows) == 1  # by folder, as designed
    worklist.predict_button.invoke()
    wait_for(window, lambda: not worklist.running)
    (row,) = worklist.rows.values()
    views = [window.diagnoser.diagnose(path, with_heatmap=False) for path in row.study.files]
    minimum = window.diagnoser.part_entry.min_confidence
    assert sorted(view.part for view in views) == export_parts(exports)
    assert all(view.part_confidence >= minimum and view.supported for view in views)
    # Their mean part is unclear, yet the row neither hides them as "Not supported" nor names one part.
    suspicion = {"fractured": 2, "uncertain": 1, "normal": 0}
    worst = max(views, key=lambda view: (suspicion[view.verdict.value], view.fracture_probability))
    assert row.result.verdict is worst.verdict and row.result.part == worst.part
    assert row.probability == pytest.approx(worst.fracture_probability, abs=1e-5)
    part, verdict, probability, problems = (row.values()[i] for i in (2, 3, 4, 5))
    assert part == f"Mixed: {', '.join(export_parts(exports))}"
    assert verdict == VERDICT_LABELS[worst.verdict] != "Not supported"
    assert probability == f"{worst.fracture_probability:.2f}"
    assert f"verdict from the {worst.part} views" in problems
    # The Problems column is as wide as what it says: nothing cut.
    worklist.update()
    measure = tkinter.font.nametofont("TkDefaultFont").measure
    assert worklist.table.column("problems", "width") >= measure(problems)
    assert worklist.table.column("part", "width") >= measure(part)
    worklist.destroy()


def test_a_view_the_model_cannot_place_does_not_hide_a_clear_one(window, data_rows, routed_paths, tmp_path):
    """A clear view beside one whose body part is unclear: the study's verdict is the clear
    view's, and the row says how many views gave it (the mean part would be unclear)."""
    from tests.conftest import DATA_DIR

    diagnoser, minimum = window.diagnoser, window.diagnoser.part_entry.min_confidence
    part = next(iter(routed_paths))
    clear = diagnoser.diagnose(routed_paths[part][0], with_heatmap=False)
    unclear_path = None
    for row in data_rows[:400]:  # the first validation X-ray the part model cannot place
        path = DATA_DIR / row["path"]
        if row["split"] == "val" and path.suffix == ".jpg":
            view = diagnoser.diagnose(path, with_heatmap=False)
            if view.part_confidence < minimum and not view.out_of_scope:
                unclear_path = path
                break
    assert unclear_path is not None, "no validation X-ray with an unclear body part among the first 400"
    folder = tmp_path / "two"
    folder.mkdir()
    shutil.copy(routed_paths[part][0], folder / "a_clear.jpg")
    shutil.copy(unclear_path, folder / "b_unclear.jpg")
    window.settings.one_study_per_image = False
    worklist = open_by_drop(window, folder)
    worklist.predict_button.invoke()
    wait_for(window, lambda: not worklist.running)
    (row,) = worklist.rows.values()
    assert row.result.verdict is clear.verdict and row.result.part == part and not row.result.mixed_parts
    assert row.probability == pytest.approx(clear.fracture_probability, abs=1e-5)
    assert row.values()[3] == VERDICT_LABELS[clear.verdict] != "Not supported"
    assert row.values()[5] == "verdict from 1 of its 2 views; the others have none of their own"
    worklist.destroy()


def test_one_study_per_image_is_a_remembered_switch_and_keeps_dicom_studies(window, exports, tmp_path):
    from app.gui.settings import SETTINGS_NAME, Settings

    window.settings.one_study_per_image = False
    uid = generate_uid()
    singles = [(path,) for path in export_files(exports)]
    (exports / "dicom").mkdir()
    dicoms = [dicom_from(path, exports / "dicom" / f"IM{n}", uid) for n, (path,) in enumerate(singles)]
    history_before = len(window.history.rows(limit=100_000))
    worklist = open_by_drop(window, exports)
    worklist.predict_button.invoke()
    wait_for(window, lambda: not worklist.running)
    assert sorted(len(row.study.files) for row in worklist.rows.values()) == [2, 2]
    written = len(window.history.rows(limit=100_000))
    assert written == history_before + 4
    # A click leaves the keyboard on what was clicked (CustomTkinter focuses it): Down and Enter
    # still walk and open the list.
    table = worklist.table
    table.selection_set(table.get_children()[0])
    table.focus(table.get_children()[0])  # the row the keys move from
    worklist.focus_force()  # the window has the keyboard, as after the user's click on it
    worklist.update()
    worklist.predict_button.event_generate("<Button-1>", x=4, y=4)
    worklist.update()
    focused = worklist.focus_get()
    assert focused is not None and str(focused) != str(table)
    focused.event_generate("<Down>")
    worklist.update()
    assert table.selection()[0] == table.get_children()[1]
    # Headings stay readable with their sort arrow.
    heading = tkinter.font.nametofont("TkHeadingFont").measure
    for column in table["columns"]:
        assert table.column(column, "width") >= heading(table.heading(column, "text")), column

    # One study per image: each export its own row, with its own verdict at once; DICOM stays by UID.
    worklist.per_image_switch.toggle()  # as a click does: it calls the switch's command
    wait_for(window, lambda: worklist.grouped)
    rows = rows_by_files(worklist)
    assert sorted(rows, key=str) == sorted([*singles, tuple(dicoms)], key=str)
    for files in singles:
        row = rows[files]
        assert row.predicted and row.result is not None and not row.result.mixed_parts
        alone = window.diagnoser.diagnose(files[0], with_heatmap=False)
        assert row.result.verdict is alone.verdict
        assert row.values()[2] == f"{alone.part.capitalize()} ({confidence_text(alone.part_confidence)})"
        assert row.values()[0] == f"exports/{files[0].name}"
    assert len(window.history.rows(limit=100_000)) == written  # nothing predicted or stored again
    assert worklist.predict_button.cget("state") == "disabled"  # all predicted

    # Remembered in the settings file, so the next worklist (and the next session) lists by image.
    assert Settings(window.settings.path).one_study_per_image
    assert window.settings.path.name == SETTINGS_NAME
    worklist.destroy()
    again = open_by_drop(window, exports)
    assert again.per_image_switch.get() and len(again.rows) == 3
    again.per_image_switch.toggle()
    wait_for(window, lambda: again.grouped)
    assert len(again.rows) == 2 and not Settings(window.settings.path).one_study_per_image
    again.destroy()


def test_a_predicted_study_opens_in_full_in_front_without_a_second_history_entry(window, exports, tmp_path):
    window.settings.one_study_per_image = False
    worklist = open_by_drop(window, exports)
    assert worklist.wm_transient() == ""  # a window manager keeps a transient above the main window
    worklist.predict_button.invoke()
    wait_for(window, lambda: not worklist.running)
    (row,) = worklist.rows.values()
    stored = len(window.history.rows(limit=100_000))
    worklist.bring_to_front()
    assert in_front(worklist, window)  # the worklist in front, as a user sees it while choosing

    before = window.generation
    press_enter_on(worklist, row)
    wait_for(window, lambda: window.generation == before + 1 and not window.loading)
    window.update()
    # In front, with the keyboard, so what Enter opened is what the user sees.
    assert in_front(window, worklist)
    assert window.focus_displayof() is not None and window.focus_displayof().winfo_toplevel() is window
    # The whole result of this session: every view's diagnosis with its heatmap, the study verdict.
    assert [view.path for view in window.views] == row.study.files
    assert [view.diagnosis for view in window.views] == [row.diagnoses[path] for path in row.study.files]
    assert all(view.diagnosis.heatmap is not None and view.stored is not None for view in window.views)
    assert window.study is row.result
    assert f"views of different parts: {', '.join(export_parts(exports))}" in window.study_label.cget("text")
    # It opens at the view its verdict is about, the most suspicious one.
    assert window.current_view.diagnosis.part == row.result.part
    assert window.verdict_label.cget("text") == VERDICT_LABELS[row.result.verdict]
    assert window.report_button.cget("state") == "normal" and window.dicom_button.cget("state") == "normal"
    window.heatmap_switch.select()
    window.render_image()
    window.update()
    assert window.legend.scale.winfo_ismapped() and window.viewer.heatmap is not None
    window.heatmap_switch.deselect()
    window.render_image()
    # Saved from there, and not predicted again: the history holds each view once.
    window.save_report(tmp_path / "study.pdf")
    wait_for(window, lambda: not window.tasks.busy)
    assert (tmp_path / "study.pdf").is_file()
    assert len(window.history.rows(limit=100_000)) == stored

    # Ctrl+L brings the worklist back in front; History reopens the same study in full, too.
    window.event_generate("<Control-l>")
    window.update()
    assert in_front(worklist, window)
    ids = set(row.history_ids)
    rows = [r for r in window.history.rows() if r.id in ids]
    before = window.generation
    window.reopen(sorted(rows, key=lambda r: r.id))
    wait_for(window, lambda: window.generation == before + 1 and not window.loading)
    assert all(view.diagnosis is not None for view in window.views) and window.study is row.result
    worklist.destroy()
