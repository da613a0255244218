"""The worklist: a folder's studies in one table, predicted in the background.

Opening a folder groups its files into studies on a worker thread (DICOM headers only).
"Predict all" sends the studies to the worker a chunk at a time; each chunk's results come
back to the Tk thread (BackgroundTasks polls with `after`), land in the history through the
main window, and the next chunk is sent unless Cancel was pressed: the chunk running then
finishes, the rest is skipped. The worker never touches a widget.

Each file's diagnosis is kept for the session (no pixels: a Diagnosis and its few-cell map), so
opening a predicted study shows its whole result without predicting again, and regrouping
("One study per image") gives the new studies their verdicts without a second history entry.
"""

from __future__ import annotations

import tkinter
from dataclasses import dataclass, field
from pathlib import Path
from tkinter import font as tkfont
from tkinter import ttk
from typing import TYPE_CHECKING

import customtkinter as ctk

from app.diagnosis.value import SUSPICION, Diagnosis, StudyDiagnosis
from app.gui.dialogs import add_close_button, place_over
from app.gui.table_style import style_table
from app.gui.tasks import BackgroundTasks
from app.words import VERDICT_LABELS, confidence_text, study_views_text
from app.xray.folders import Study, find_xrays, group_studies

if TYPE_CHECKING:
    from app.gui.window import BoneFracWindow, ViewState

COLUMNS = ("study", "files", "part", "verdict", "probability", "problems")
HEADINGS = ("Study", "Files", "Body part", "Study verdict", "Fracture probability", "Problems")
_WIDTHS = {"study": 200, "files": 60, "part": 110, "verdict": 120, "probability": 175, "problems": 320}  # at least
_STYLE = "Worklist.Treeview"
CHUNK_FILES = 8  # files per trip to the worker: small enough that Cancel answers within seconds
# Most suspicious first: a fracture, then uncertain, normal, refused, and what is not predicted.
_DESCENDING_FIRST = ("verdict", "probability", "files", "problems")  # a first click puts the most on top
_LIST_KEYS = ("Up", "Down", "Prior", "Next", "Home", "End", "Return", "KP_Enter")
_SORT_ARROW = {True: " ▼", False: " ▲"}


@dataclass
class StudyRow:
    """One row of the worklist: a study, and what prediction made of it."""

    study: Study
    result: StudyDiagnosis | None = None
    errors: list[str] = field(default_factory=list)  # "<file>: <reason>" for files not diagnosed
    history_ids: list[int] = field(default_factory=list)
    predicted: bool = False
    diagnoses: dict[Path, Diagnosis] = field(default_factory=dict)  # of the files diagnosed

    @property
    def probability(self) -> float | None:
        return None if self.result is None else self.result.fracture_probability

    def values(self) -> tuple[str, ...]:
        part = self.study.body_part or "—"
        if self.result is not None:
            # With its confidence, as the window and the CLI table show it: a part the model is
            # unsure of must not read as plainly as a clear one.
            confidence = confidence_text(self.result.part_probabilities[self.result.part])
            part = f"{self.result.part.capitalize()} ({confidence})"
            if self.result.mixed_parts:  # never the one part: the row says its views differ
                part = f"Mixed: {', '.join(self.result.mixed_parts)}"
        verdict = VERDICT_LABELS[self.result.verdict] if self.result is not None else "—"
        if self.predicted and self.result is None:
            verdict = "Not diagnosed"
        probability = "—" if self.probability is None else f"{self.probability:.2f}"
        return (self.study.label, str(len(self.study.files)), part, verdict, probability, self.problem_line())

    def problem_line(self) -> str:
        """What stands in the way, in one line: the first unreadable file (and how many more),
        and why a study has no verdict."""
        problems = []
        if self.errors:
            more = f" (+{len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            problems.append(f"{self.errors[0]}{more}")
        if self.result is not None and self.result.unsupported_reason:
            problems.append(f"not supported: {self.result.unsupported_reason}")
        elif self.result is not None and self.result.mixed_parts:  # the parts are in their column
            problems.append(f"verdict from the {self.result.part} views, the most suspicious part")
        elif self.result is not None and (views := study_views_text(self.result)):
            problems.append(views)
        return "; ".join(problems)


def sort_key(column: str):
    """How a column sorts its rows (ascending; the window reverses for descending)."""
    keys = {
        "study": lambda row: row.study.label.lower(),
        "files": lambda row: len(row.study.files),
        "part": lambda row: row.values()[2].lower(),
        "verdict": lambda row: (SUSPICION.get(row.result.verdict, -1) if row.result else -1, row.probability or 0),
        "probability": lambda row: -1.0 if row.probability is None else row.probability,
        "problems": lambda row: len(row.errors),
    }
    return keys[column]


@dataclass(frozen=True)
class _StudyOutcome:
    """A study as the worker returns it: the views diagnosed, the errors, the study verdict."""

    row: StudyRow
    views: list[ViewState]
    errors: dict[Path, str]  # file -> "<file>: <reason>"
    study: StudyDiagnosis | None


@dataclass(frozen=True)
class _FileResult:
    """What prediction made of one file this session: its diagnosis and history row, or why not."""

    diagnosis: Diagnosis | None
    history_id: int | None = None
    error: str | None = None


def _predict_chunk(diagnoser, rows: list[StudyRow]) -> list[_StudyOutcome]:
    """Worker thread: diagnose the files of `rows` in one batched pass, then each study."""
    from app.gui.window import ViewState

    paths = [path for row in rows for path in row.study.files]
    # With the heatmap (a few cells, nearly free): a study opened later shows it without predicting again.
    outcomes = iter(diagnoser.diagnose_many(paths, with_heatmap=True, batch_size=CHUNK_FILES))
    results = []
    for row in rows:
        views, errors = [], {}
        for path, outcome in zip(row.study.files, outcomes):  # one outcome per file, in order
            if outcome.error is not None:
                errors[path] = f"{path.name}: {outcome.error}"
            else:
                views.append(ViewState(path=path, xray=outcome.xray, diagnosis=outcome.diagnosis))
        study = diagnoser.aggregate_study([view.diagnosis for view in views]) if views else None
        results.append(_StudyOutcome(row, views, errors, study))
    return results


class WorklistWindow(ctk.CTkToplevel):
    def __init__(self, master: BoneFracWindow, folder: Path) -> None:
        super().__init__(master)
        self.main = master
        self.folder = folder
        self.title(f"Worklist — {folder.name}")
        self.rows: dict[str, StudyRow] = {}  # tree item -> row
        self.files: list[Path] = []  # the X-rays found in the folder
        self.done: dict[Path, _FileResult] = {}  # every file predicted this session
        self.sorted_by: tuple[str, bool] | None = None  # (column, descending)
        self.grouped = False
        self.running = False
        self.cancel_requested = False
        self.queue: list[StudyRow] = []
        self.done_files = self.total_files = 0
        # Its own worker: reading a study in the main window is not queued behind a long run.
        self.tasks = BackgroundTasks(master)
        self._build()
        # Not transient: a window manager keeps a transient above its master, and the main window
        # must come in front when a study opens here (Ctrl+L there brings this list back).
        place_over(self, master, min(1180, master.winfo_screenwidth() - 40), 480)
        self.after(50, self.bring_to_front)  # so the keys reach the list
        self.set_status(f"Reading {folder}…")
        self._group()

    # ---------- building ----------
    def _build(self) -> None:
        self.table = ttk.Treeview(self, columns=COLUMNS, show="headings", selectmode="browse", style=_STYLE)
        style_table(self, _STYLE)
        for column, heading in zip(COLUMNS, HEADINGS):
            self.table.heading(column, text=heading, anchor="w", command=lambda c=column: self.sort_by(c))
            self.table.column(column, width=_WIDTHS[column], anchor="w", stretch=column == "problems")
        scrollbar = ttk.Scrollbar(self, orient="vertical", command=self.table.yview)
        # A long problem stays whole in its column: the list scrolls sideways to it.
        sideways = ttk.Scrollbar(self, orient="horizontal", command=self.table.xview)
        self.table.configure(yscrollcommand=scrollbar.set, xscrollcommand=sideways.set)
        bar = ctk.CTkFrame(self, fg_color="transparent")
        bar.pack(side="bottom", fill="x", padx=10, pady=(0, 10))
        self.status_label = ctk.CTkLabel(self, text="", anchor="w")
        self.status_label.pack(side="bottom", fill="x", padx=12)
        sideways.pack(side="bottom", fill="x", padx=(10, 10))
        scrollbar.pack(side="right", fill="y", padx=(0, 10), pady=(10, 0))
        self.table.pack(fill="both", expand=True, padx=(10, 0), pady=(10, 0))
        self.table.bind("<Return>", lambda _event: self.open_selected())
        self.table.bind("<KP_Enter>", lambda _event: self.open_selected())
        self.table.bind("<Double-1>", lambda _event: self.open_selected())
        self.table.bind("<<TreeviewSelect>>", lambda _event: self._say_problems())
        for key in _LIST_KEYS:  # on the window: whatever was clicked last, the keys walk the list
            self.bind(f"<{key}>", self._key_to_list, add=True)
        self.predict_button = ctk.CTkButton(bar, text="Predict all", width=110, command=self.predict_all)
        self.cancel_button = ctk.CTkButton(bar, text="Cancel", width=90, command=self.cancel, state="disabled")
        self.open_button = ctk.CTkButton(bar, text="Open study", width=100, command=self.open_selected)
        self.progress = ctk.CTkProgressBar(bar, width=220)
        self.progress.set(0)
        self.progress_label = ctk.CTkLabel(bar, text="")
        for widget in (self.predict_button, self.cancel_button, self.open_button, self.progress, self.progress_label):
            widget.pack(side="left", padx=(0, 8))
        self.close_button = add_close_button(self, bar)
        self.close_button.pack(side="right")
        # For a folder of unrelated exports; remembered like the app's other settings.
        self.per_image_switch = ctk.CTkSwitch(bar, text="One study per image", command=self.toggle_per_image)
        if self.main.settings.one_study_per_image:
            self.per_image_switch.select()
        self.per_image_switch.pack(side="right", padx=(0, 16))

    def _set_appearance_mode(self, mode_string: str) -> None:
        # CustomTkinter calls this on every Light/Dark switch; ttk widgets need restyling by hand.
        super()._set_appearance_mode(mode_string)
        style_table(self, _STYLE)

    def set_status(self, text: str) -> None:
        self.status_label.configure(text=text)

    def _key_to_list(self, event: tkinter.Event) -> None:
        """A list key pressed while another widget of this window has the focus (CustomTkinter
        focuses whatever is clicked, e.g. Predict all) goes to the list, as if it had the focus."""
        if event.widget is self.table or str(event.widget) == str(self.table):
            return  # the list's own bindings answered it
        self.table.focus_set()
        self.table.event_generate(f"<{event.keysym}>")

    def bring_to_front(self) -> None:
        if not self.winfo_exists():
            return
        if self.state() == "iconic":
            self.deiconify()
        self.lift()
        self.focus_force()
        self.table.focus_set()

    # ---------- the studies ----------
    def _group(self) -> None:
        """Find the folder's X-rays (once) and group them into studies, on the worker."""
        self.grouped = False
        folder, files, per_image = self.folder, self.files, bool(self.per_image_switch.get())

        def work() -> tuple[list[Path], list[Study]]:
            found = files or find_xrays(folder)
            return found, group_studies(found, folder, one_per_image=per_image)

        self.render_buttons()
        self.tasks.submit(work, lambda result: self._grouped(*result), self._failed)

    def toggle_per_image(self) -> None:
        """Regroup the listed files: each image its own study, or one study per folder. Files
        already predicted keep their results; their studies' verdicts are made anew from them."""
        if self.running or not self.grouped:  # disabled then; called from code, it goes back
            switch = self.per_image_switch
            switch.select() if self.main.settings.one_study_per_image else switch.deselect()
            return
        self.main.settings.one_study_per_image = bool(self.per_image_switch.get())
        self.set_status("Regrouping…")
        self._group()

    def _grouped(self, files: list[Path], studies: list[Study]) -> None:
        if not self.winfo_exists():
            return
        self.files, self.grouped = files, True
        self.table.delete(*self.table.get_children())
        self.rows.clear()
        for index, study in enumerate(studies):
            row = StudyRow(study)
            self._fill_from_done(row)
            self.rows[f"study-{index}"] = row
            self.table.insert("", "end", iid=f"study-{index}", values=row.values())
        if self.sorted_by is not None:
            self.sort_by(*self.sorted_by)
        self._fit_columns()
        if not studies:
            self.set_status(f"No X-ray images (PNG, JPEG, DICOM, ...) in {self.folder} or its subfolders.")
        else:
            predicted = sum(row.predicted for row in self.rows.values())
            done = f", {predicted} predicted" if predicted else ""
            self.set_status(f"{len(studies)} studies{done}, {len(files)} files. Predict all, or Enter opens a study.")
            first = self.table.get_children()[0]
            self.table.selection_set(first)
            self.table.focus(first)
            self.table.focus_set()
        self.render_buttons()

    def _fill_from_done(self, row: StudyRow) -> None:
        """A study whose files were all predicted this session (under another grouping) gets its
        verdict from their diagnoses, as the engine aggregates a study; nothing is predicted or
        written to the history again (the history keeps the grouping they were predicted in)."""
        results = [self.done.get(path) for path in row.study.files]
        if not results or any(result is None for result in results):
            return
        row.diagnoses = {path: r.diagnosis for path, r in zip(row.study.files, results) if r.diagnosis is not None}
        row.errors = [r.error for r in results if r.error is not None]
        row.history_ids = [r.history_id for r in results if r.history_id is not None]
        if row.diagnoses and self.main.diagnoser is not None:
            row.result = self.main.diagnoser.aggregate_study(list(row.diagnoses.values()))
        row.predicted = True

    def _failed(self, error: BaseException) -> None:
        if self.winfo_exists():
            self.set_status(f"The folder could not be read: {error}")

    def render_row(self, item: str) -> None:
        self.table.item(item, values=self.rows[item].values())

    def _fit_columns(self) -> None:
        """Each column as wide as its widest entry (never narrower than its default), so a long
        problem or a mixed part is not cut; the list scrolls sideways when that is wider."""
        measure = tkfont.nametofont("TkDefaultFont").measure
        shown = [row.values() for row in self.rows.values()]
        for index, column in enumerate(COLUMNS):
            heading = tkfont.nametofont("TkHeadingFont").measure(HEADINGS[index] + _SORT_ARROW[True])  # arrow too
            widest = max([_WIDTHS[column] - 20, heading, *(measure(values[index]) for values in shown)]) + 20
            self.table.column(column, width=widest, minwidth=widest)
        self._widen_to_columns()

    def _widen_to_columns(self) -> None:
        """Grow the window (never shrink it) towards the columns' width, within the screen, so the
        whole row is seen without scrolling where the screen allows."""
        needed = sum(int(self.table.column(column, "width")) for column in COLUMNS) + 60  # scrollbar, margins
        width = min(needed, self.winfo_screenwidth() - 40)
        if width > self.winfo_width() > 1:
            left = max(0, min(self.winfo_x(), self.winfo_screenwidth() - width))
            self.geometry(f"{width}x{self.winfo_height()}+{left}+{self.winfo_y()}")

    def sort_by(self, column: str, descending: bool | None = None) -> None:
        """Heading click: sort by that column; a second click on it turns the order round."""
        if descending is None:
            same = self.sorted_by is not None and self.sorted_by[0] == column
            descending = not self.sorted_by[1] if same else column in _DESCENDING_FIRST
        ordered = sorted(self.rows, key=lambda item: sort_key(column)(self.rows[item]), reverse=descending)
        for index, item in enumerate(ordered):
            self.table.move(item, "", index)
        self.sorted_by = (column, descending)
        for name, heading in zip(COLUMNS, HEADINGS):
            self.table.heading(name, text=heading + (_SORT_ARROW[descending] if name == column else ""))
        self._fit_columns()

    def _say_problems(self) -> None:
        """The selected row's problems in full in the status line (the column cuts long ones)."""
        selection = self.table.selection()
        if selection and not self.running and (line := self.rows[selection[0]].problem_line()):
            self.set_status(line)

    def shown_order(self) -> list[StudyRow]:
        return [self.rows[item] for item in self.table.get_children()]

    def open_selected(self) -> None:
        """Show the selected study in the main window, in front: once predicted, with its whole
        result from this session (heatmap, saves), its history rows (note) and no new prediction."""
        selection = self.table.selection()
        if not selection:
            return
        row = self.rows[selection[0]]
        if not row.diagnoses:
            self.main.load_paths(list(row.study.files))
        else:
            stored = {}
            history = self.main.history
            if row.history_ids and history is not None:
                wanted = set(row.history_ids)
                stored = {Path(r.file_path): r for r in history.rows(limit=100_000) if r.id in wanted}
            files = [path for path in row.study.files if path in row.diagnoses]  # not the unreadable ones
            study = row.result if len(files) > 1 else None  # as Predict gives it: a study of several
            self.main.load_paths(files, stored=stored, results=dict(row.diagnoses), study=study)
        self.main.bring_to_front()

    # ---------- predicting ----------
    def render_buttons(self) -> None:
        waiting = [row for row in self.rows.values() if not row.predicted]
        can_start = self.grouped and bool(waiting) and not self.running
        self.predict_button.configure(state="normal" if can_start else "disabled")
        self.cancel_button.configure(state="normal" if self.running and not self.cancel_requested else "disabled")
        self.per_image_switch.configure(state="normal" if self.grouped and not self.running else "disabled")

    def predict_all(self) -> None:
        if self.running or not self.grouped:
            return
        if self.main.diagnoser is None:
            reason = self.main.models_error or "they are still loading; try again in a moment"
            self.set_status(f"The models are not ready: {reason}.")
            return
        self.queue = [row for row in self.shown_order() if not row.predicted]
        self.total_files = sum(len(row.study.files) for row in self.queue)
        self.done_files = 0
        self.running, self.cancel_requested = True, False
        self.render_buttons()
        self._render_progress()
        self._next_chunk()

    def _next_chunk(self) -> None:
        if self.cancel_requested or not self.queue:
            self._finished()
            return
        chunk: list[StudyRow] = []
        while self.queue and sum(len(row.study.files) for row in chunk) < CHUNK_FILES:
            chunk.append(self.queue.pop(0))  # whole studies: each is aggregated in one piece
        diagnoser = self.main.diagnoser
        self.tasks.submit(
            lambda: _predict_chunk(diagnoser, chunk),
            self._chunk_done,
            lambda error: self._chunk_failed(chunk, error),
        )

    def _chunk_done(self, outcomes: list[_StudyOutcome]) -> None:
        for outcome in outcomes:
            row = outcome.row
            # The history gets each study as a Predict in the main window gives it: one study id
            # for the views of a study of several, none for a single view.
            several = outcome.study if len(outcome.views) > 1 else None
            self.main.remember_views(outcome.views, "", several)
            for view in outcome.views:  # the pixels are not kept: the ViewStates go with this call
                self.done[view.path] = _FileResult(view.diagnosis, view.history_id)
            for path, error in outcome.errors.items():
                self.done[path] = _FileResult(None, error=error)
            row.diagnoses = {view.path: view.diagnosis for view in outcome.views}
            row.history_ids = [view.history_id for view in outcome.views if view.history_id is not None]
            row.result, row.errors, row.predicted = outcome.study, list(outcome.errors.values()), True
            self.done_files += len(row.study.files)
        self._after_chunk([outcome.row for outcome in outcomes])

    def _chunk_failed(self, chunk: list[StudyRow], error: BaseException) -> None:
        """Something unexpected in one chunk: said in its rows; the rest still runs."""
        for row in chunk:
            row.errors, row.predicted = [f"not diagnosed ({type(error).__name__}: {error})"], True
            self.done_files += len(row.study.files)
        self._after_chunk(chunk)

    def _after_chunk(self, rows: list[StudyRow]) -> None:
        if not self.winfo_exists():  # closed meanwhile: what finished is in the history; stop here
            self.running = False
            return
        shown = {id(row): item for item, row in self.rows.items()}
        for row in rows:
            self.render_row(shown[id(row)])
        self._fit_columns()
        self._render_progress()
        self._next_chunk()

    def _render_progress(self) -> None:
        self.progress.set(self.done_files / self.total_files if self.total_files else 0)
        self.progress_label.configure(text=f"{self.done_files} of {self.total_files}")

    def cancel(self) -> None:
        """The chunk on the worker finishes (its results are kept); the rest is skipped."""
        if self.running:
            self.cancel_requested = True
            self.set_status("Cancelling: the files being diagnosed now finish, the rest is skipped…")
            self.render_buttons()

    def _finished(self) -> None:
        self.running = False
        rows = list(self.rows.values())
        predicted = [row for row in rows if row.predicted]
        failed = sum(len(row.errors) for row in rows)
        problems = f"; {failed} file(s) could not be diagnosed (see Problems)" if failed else ""
        if self.cancel_requested:
            waiting = len(rows) - len(predicted)
            self.set_status(f"Cancelled: {len(predicted)} studies predicted, {waiting} not{problems}.")
        else:
            self.set_status(f"{len(predicted)} studies predicted, most suspicious first{problems}.")
        self.sort_by("probability", descending=True)
        self.render_buttons()

    def destroy(self) -> None:
        self.cancel_requested = True  # a chunk still running finishes into the history, then stops
        self.tasks.shutdown()
        super().destroy()
