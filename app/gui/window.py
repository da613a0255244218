"""The clinician's window. State lives in `ViewState`s and a few attributes of the window;
widgets are built once and refreshed from that state by `render_*` methods."""

from __future__ import annotations

import sqlite3
import tkinter
import uuid
from dataclasses import dataclass
from pathlib import Path
from tkinter import filedialog

import customtkinter as ctk
import numpy as np
from PIL import Image

from app.diagnosis.diagnoser import Outcome
from app.diagnosis.outlines import outline_mask, outlines_apply
from app.diagnosis.value import NOTICE, SUSPICION, Diagnosis, StudyDiagnosis, Verdict
from app.errors import BoneFracError
from app.gui.dialogs import MessageDialog, TextWindow
from app.gui.history_window import HistoryWindow
from app.gui.legend import HeatmapLegend
from app.gui.screenshot import grab_window, save_window_screenshot
from app.gui.settings import OPEN, SAVE, SETTINGS_NAME, Settings
from app.gui.tasks import BackgroundTasks
from app.gui.text import (
    about_text,
    file_text,
    folder_text,
    model_text,
    part_text,
    probability_text,
    stored_text,
    study_text,
)
from app.gui.viewer import XRayViewer
from app.gui.worklist import WorklistWindow
from app.history import History, HistoryRow, default_history_path
from app.words import VERDICT_LABELS, confidence_text, heatmap_hint, outlines_text, skill_text, threshold_text
from app.xray import XRay, read_xray

# Tk file filters are case-sensitive on Linux; DICOM files often come without any extension ("All files").
_OPENABLE_EXTENSIONS = ("png", "jpg", "jpeg", "dcm", "dicom", "bmp", "tif", "tiff", "gif", "webp")
OPEN_TYPES = [
    ("X-ray images and DICOM", " ".join(f"*.{e} *.{e.upper()}" for e in _OPENABLE_EXTENSIONS)),
    ("All files", "*"),
]
TITLE = "bonefrac — fracture detection decision support"
VERDICT_COLOURS = {
    Verdict.FRACTURED: "#c0392b",
    Verdict.NORMAL: "#1e8449",
    Verdict.UNCERTAIN: "#b9770e",
    Verdict.UNSUPPORTED: "#7f8c8d",
}

try:  # drag and drop, where the tkdnd extension is available
    from tkinterdnd2 import DND_FILES, TkinterDnD

    _DnDBase: type = TkinterDnD.DnDWrapper
except ImportError:  # pragma: no cover - optional
    TkinterDnD, DND_FILES = None, None
    _DnDBase = object


@dataclass
class ViewState:
    path: Path
    xray: XRay
    diagnosis: Diagnosis | None = None
    stored: HistoryRow | None = None  # the result kept in the history, when reopened from there
    history_id: int | None = None  # the history row that holds this view's note


def most_suspicious(views: list[ViewState]) -> int:
    """The index of the view with the most suspicious verdict (then the highest probability);
    0 when none has a result."""
    ranks = [
        (SUSPICION[v.diagnosis.verdict], v.diagnosis.fracture_probability or 0.0) if v.diagnosis else (-1, 0.0)
        for v in views
    ]
    return max(range(len(views)), key=lambda index: (ranks[index], -index))


@dataclass(frozen=True)
class _Known:
    """What is already known about files being opened: their history rows, and their diagnoses
    (and study) from this session."""

    stored: dict[Path, HistoryRow]
    results: dict[Path, Diagnosis]
    study: StudyDiagnosis | None


class BoneFracWindow(ctk.CTk, _DnDBase):
    def __init__(
        self, models_dir: Path | None = None, history_path: Path | None = None, open_paths: list[Path] | None = None
    ) -> None:
        super().__init__()
        self.title(TITLE)
        self.geometry("1180x780")
        self.minsize(900, 600)
        self.models_dir = models_dir
        self.diagnoser = None
        self.models_error: str | None = None
        self.views: list[ViewState] = []
        self.current = 0
        self.study: StudyDiagnosis | None = None
        self.predicting = False
        self.writing_report = False
        self.loading = False
        self.generation = 0  # bumps on every load, so stale background results are dropped
        self.dialogs: list[MessageDialog] = []
        self.tasks = BackgroundTasks(self)
        self.history: History | None = None
        self.history_window: HistoryWindow | None = None
        self.worklist: WorklistWindow | None = None
        self.settings = Settings((history_path or default_history_path()).parent / SETTINGS_NAME)
        self.saved_note = ""  # the note as the history rows of the views on screen hold it
        # Diagnoses of this session by history row (and studies by study id), so reopening them
        # shows the whole result. Small: a Diagnosis holds no pixels, its map is a few cells.
        self.session_results: dict[int, Diagnosis] = {}
        self.session_studies: dict[str, tuple[StudyDiagnosis, int]] = {}  # and its number of views
        self._build()
        self._bind_keys()
        self._enable_drop()
        self.protocol("WM_DELETE_WINDOW", self.close)
        self._open_history(history_path)
        self.set_status("Loading the models…", busy=True)
        self.tasks.submit(self._load_models, self._models_ready, self._models_failed)
        self.render_buttons()
        if open_paths:  # files given on the command line ("Open with"): read while the models load
            self.load_paths(open_paths)

    # ---------- building ----------
    def _build(self) -> None:
        self.grid_columnconfigure(0, weight=1)
        self.grid_rowconfigure(1, weight=1)
        self.toolbar = bar = ctk.CTkFrame(self)
        bar.grid(row=0, column=0, columnspan=2, sticky="ew", padx=8, pady=(8, 4))
        bar.grid_columnconfigure(0, weight=1)
        # Two groups: reading and predicting on the left, saving and the rest on the right; in a
        # window too narrow for one row the right group moves under the left (see _fit_toolbar).
        self.read_group = reading = ctk.CTkFrame(bar, fg_color="transparent")
        self.save_group = saving = ctk.CTkFrame(bar, fg_color="transparent")
        self.toolbar_rows = 0
        bar.bind("<Configure>", self._fit_toolbar, add="+")
        self.open_button = ctk.CTkButton(reading, text="Open X-rays…", width=110, command=self.open_dialog)
        self.predict_button = ctk.CTkButton(reading, text="Predict", width=90, command=self.predict)
        self.heatmap_switch = ctk.CTkSwitch(reading, text="Heatmap", command=self.render_image)
        self.screenshot_button = ctk.CTkButton(
            saving, text="Save screenshot…", width=130, command=self.screenshot_dialog
        )
        self.report_button = ctk.CTkButton(saving, text="Save report…", width=110, command=self.report_dialog)
        self.dicom_button = ctk.CTkButton(saving, text="Save as DICOM…", width=125, command=self.dicom_dialog)
        self.history_button = ctk.CTkButton(saving, text="History", width=80, command=self.show_history)
        self.about_button = ctk.CTkButton(saving, text="About", width=70, command=self.show_about)
        self.appearance_menu = ctk.CTkOptionMenu(
            saving, values=["System", "Light", "Dark"], width=100, command=ctk.set_appearance_mode
        )
        self.theme_label = ctk.CTkLabel(saving, text="Theme")
        for widget in (self.open_button, self.predict_button, self.heatmap_switch):
            widget.pack(side="left", padx=4, pady=6)
        self.folder_button = ctk.CTkButton(reading, text="Open folder…", width=110, command=self.open_folder_dialog)
        self.folder_button.pack(side="left", padx=4, pady=6, after=self.open_button)  # a worklist of its studies
        for widget in (self.appearance_menu, self.theme_label, self.about_button, self.history_button):
            widget.pack(side="right", padx=4, pady=6)
        for widget in (self.dicom_button, self.report_button, self.screenshot_button):
            widget.pack(side="right", padx=4, pady=6)
        self._fit_toolbar()

        left = ctk.CTkFrame(self, fg_color="transparent")
        left.grid(row=1, column=0, sticky="nsew", padx=(8, 4), pady=4)
        left.grid_rowconfigure(2, weight=1)
        left.grid_columnconfigure(0, weight=1)
        header = ctk.CTkFrame(left, fg_color="transparent")
        header.grid(row=1, column=0, sticky="ew")
        # The open file and its folder on a line of their own, so the view controls never cut
        # them; a folder too long for the line loses its middle ("/home/…/exports").
        self.file_font = ctk.CTkFont()
        self.file_label = ctk.CTkLabel(left, text="", anchor="w", font=self.file_font, height=22)
        self.file_label.grid(row=0, column=0, sticky="ew", padx=4)
        self.file_label.bind("<Configure>", lambda _event: self._render_file(self.current_view))
        # View-only adjustments beside the image they change (right drag: window/level).
        self.reset_view_button = ctk.CTkButton(header, text="Reset view", width=84, command=self.reset_view)
        self.flip_button = ctk.CTkButton(header, text="Flip ↔", width=64, command=lambda: self.viewer.flip())
        self.rotate_button = ctk.CTkButton(header, text="Rotate 90°", width=84, command=lambda: self.viewer.rotate())
        self.invert_button = ctk.CTkButton(header, text="Invert", width=64, command=lambda: self.viewer.invert())
        # Zoom and fit live with the other view controls, so the top bar keeps room for its labels.
        self.fit_button = ctk.CTkButton(header, text="Fit", width=44, command=lambda: self.viewer.fit())
        self.zoom_out_button = ctk.CTkButton(header, text="−", width=32, command=lambda: self.viewer.zoom_by(0.8))
        self.zoom_in_button = ctk.CTkButton(header, text="+", width=32, command=lambda: self.viewer.zoom_by(1.25))
        view_controls = (
            self.reset_view_button,
            self.flip_button,
            self.rotate_button,
            self.invert_button,
            self.fit_button,
            self.zoom_in_button,
            self.zoom_out_button,
        )
        for widget in view_controls:
            widget.pack(side="right", padx=2, pady=(0, 4))
        # With the view controls, as the top bar has no room left. Disabled unless the result has
        # a fracture map to threshold; the panel says why.
        self.outlines_switch = ctk.CTkSwitch(header, text="Outlines", width=90, command=self._outlines_toggled)
        # The user's choice, kept apart from the knob: a disabled switch shows "off".
        self.outlines_wanted = False
        self.outlines_switch.configure(state="disabled")
        self.outlines_switch.pack(side="right", padx=(2, 8), pady=(0, 4))
        self.viewer = XRayViewer(left)
        self.viewer.grid(row=2, column=0, sticky="nsew")
        # The legend stays under the image, so the image never jumps when the heatmap comes or
        # goes. Thumbnails are shown only for a study of several (grid_remove keeps their place).
        self.legend = HeatmapLegend(left)
        self.legend.grid(row=3, column=0, sticky="ew", pady=(4, 0))
        self.thumbnails = ctk.CTkScrollableFrame(left, orientation="horizontal", height=112)
        self.thumbnails.grid(row=4, column=0, sticky="ew", pady=(6, 0))
        self.thumbnails.grid_remove()

        # Scrolls where the window is too short for all of it (a 768-pixel-high laptop screen).
        self.panel = panel = ctk.CTkScrollableFrame(self, width=336)
        panel.grid(row=1, column=1, sticky="nsew", padx=(4, 8), pady=4)
        panel.grid_columnconfigure(0, weight=1)
        title_font = ctk.CTkFont(size=13, weight="bold")
        ctk.CTkLabel(panel, text="Body part", font=title_font, anchor="w").grid(
            row=0, sticky="ew", padx=14, pady=(14, 0)
        )
        self.part_label = ctk.CTkLabel(panel, text="—", anchor="w", font=ctk.CTkFont(size=16))
        self.part_label.grid(row=1, sticky="ew", padx=14)
        ctk.CTkLabel(panel, text="Verdict", font=title_font, anchor="w").grid(row=2, sticky="ew", padx=14, pady=(14, 0))
        self.verdict_label = ctk.CTkLabel(
            panel, text="—", anchor="center", font=ctk.CTkFont(size=24, weight="bold"), corner_radius=8, height=52
        )
        self.verdict_label.grid(row=3, sticky="ew", padx=14, pady=4)
        self.probability_label = ctk.CTkLabel(panel, text="", anchor="w", justify="left", wraplength=300)
        self.probability_label.grid(row=4, sticky="ew", padx=14)
        self.threshold_label = ctk.CTkLabel(panel, text="", anchor="w", justify="left", wraplength=300)
        self.threshold_label.grid(row=5, sticky="ew", padx=14, pady=(2, 0))
        self.skill_label = ctk.CTkLabel(panel, text="", anchor="w", justify="left", wraplength=300)
        self.skill_label.grid(row=6, sticky="ew", padx=14, pady=(6, 0))
        self.outlines_label = ctk.CTkLabel(panel, text="", anchor="w", justify="left", wraplength=300)
        self.outlines_label.grid(row=7, sticky="ew", padx=14, pady=(6, 0))
        self.study_label = ctk.CTkLabel(panel, text="", anchor="w", justify="left", wraplength=300, font=title_font)
        self.study_label.grid(row=8, sticky="ew", padx=14, pady=(12, 0))
        # Last in the panel: the longest text, so the note above it stays within reach.
        self.model_label = ctk.CTkLabel(panel, text="", anchor="w", justify="left", wraplength=300)
        self.model_label.grid(row=12, sticky="ew", padx=14, pady=(12, 0))
        for optional in (self.threshold_label, self.skill_label, self.outlines_label, self.study_label):
            optional.grid_remove()  # shown with a result (see _set_line)
        ctk.CTkLabel(panel, text="Note for the report and history", anchor="w").grid(
            row=9, sticky="ew", padx=14, pady=(16, 0)
        )
        self.note_entry = ctk.CTkEntry(panel, placeholder_text="optional")
        self.note_entry.grid(row=10, sticky="ew", padx=14)
        self.note_entry.bind("<FocusOut>", lambda _event: self.save_note())
        self.note_entry.bind("<Return>", lambda _event: self.save_note())
        self.identifiers_switch = ctk.CTkCheckBox(
            panel,
            text="Patient name, ID, birth date on reports (DICOM)",
            command=self.toggle_patient_identifiers,
        )
        if self.settings.patient_identifiers_on_reports:
            self.identifiers_switch.select()
        self.identifiers_switch.grid(row=11, sticky="ew", padx=14, pady=(8, 0))

        status = ctk.CTkFrame(self, fg_color="transparent")
        status.grid(row=2, column=0, columnspan=2, sticky="ew", padx=8)
        # Packed only while busy: an idle bar at 0 still draws a coloured stub.
        self.progress = ctk.CTkProgressBar(status, mode="indeterminate", width=160)
        self.progress.set(0)
        self.status_label = ctk.CTkLabel(status, text="", anchor="w")
        self.status_label.pack(side="left", fill="x", expand=True, padx=(4, 0))
        self.notice_label = ctk.CTkLabel(
            self, text=NOTICE, fg_color="#fff3cd", text_color="#5c4400", corner_radius=6, height=30
        )
        self.notice_label.grid(row=3, column=0, columnspan=2, sticky="ew", padx=8, pady=(2, 8))

    def _fit_toolbar(self, _event: object = None) -> None:
        """One row of buttons where the window is wide enough for all of them, else two: no
        button is ever cut off or hidden (the window may be as narrow as its minimum size)."""
        needed = self.read_group.winfo_reqwidth() + self.save_group.winfo_reqwidth()
        rows = 1 if self.toolbar.winfo_width() <= 1 or self.toolbar.winfo_width() >= needed else 2
        if rows == self.toolbar_rows:
            return
        self.toolbar_rows = rows
        self.read_group.grid(row=0, column=0, sticky="w")
        if rows == 1:
            self.save_group.grid(row=0, column=1, columnspan=1, sticky="e")
        else:
            self.save_group.grid(row=1, column=0, columnspan=2, sticky="e")

    def _bind_keys(self) -> None:
        shortcuts = {
            "<Control-o>": self.open_dialog,
            "<Control-p>": self.predict,
            "<Control-s>": self.screenshot_dialog,
            "<Control-r>": self.report_dialog,
            "<Control-h>": self.show_history,
            "<Control-l>": self.show_worklist,
            "<F1>": self.show_about,
            "<Control-q>": self.close,  # as the window's close button: the note is saved first
            "<Control-plus>": lambda: self.viewer.zoom_by(1.25),
            "<Control-equal>": lambda: self.viewer.zoom_by(1.25),
            "<Control-minus>": lambda: self.viewer.zoom_by(0.8),
            "<Control-0>": lambda: self.viewer.fit(),
        }
        for sequence, action in shortcuts.items():
            self.bind(sequence, lambda _event, act=action: act())
        view_keys = {
            "iI": lambda: self.viewer.invert(),
            "rR": lambda: self.viewer.rotate(),
            "hH": lambda: self.viewer.flip(),
            "0": self.reset_view,
        }
        for keys, action in view_keys.items():
            for key in keys:
                self.bind(f"<Key-{key}>", lambda event, act=action: self._view_key(event, act))
        # Plain + / - (and the keypad's) zoom too, as About says; characters again while typing.
        for keysym, factor in (("plus", 1.25), ("equal", 1.25), ("KP_Add", 1.25), ("minus", 0.8), ("KP_Subtract", 0.8)):
            self.bind(f"<Key-{keysym}>", lambda event, f=factor: self._view_key(event, lambda: self.viewer.zoom_by(f)))
        self.bind("<Escape>", lambda event: self._view_key(event, self.reset_view))

    def _view_key(self, event: tkinter.Event, action) -> None:
        """Plain keys adjust the view, except while typing (the note): there they are letters."""
        if not isinstance(event.widget, tkinter.Entry | tkinter.Text):
            action()

    def reset_view(self) -> None:
        self.viewer.reset()

    def _enable_drop(self) -> None:
        self.drop_enabled = False
        if TkinterDnD is None:
            return
        try:
            self.TkdndVersion = TkinterDnD._require(self)
            self.drop_target_register(DND_FILES)
            self.dnd_bind("<<Drop>>", self._on_drop)
            self.drop_enabled = True
        except (tkinter.TclError, RuntimeError):
            pass  # no tkdnd for this platform: the Open button still works

    def _on_drop(self, event: tkinter.Event) -> None:
        paths = [Path(p) for p in self.tk.splitlist(event.data)]
        folders = [path for path in paths if path.is_dir()]
        if folders:  # a dropped folder opens as a worklist; files dropped with it are in it or beside it
            self.open_folder(folders[0])
        elif paths:
            self.load_paths(paths)

    # ---------- models ----------
    def _load_models(self):
        from app.diagnosis import Diagnoser  # imports Keras on this worker thread, not the Tk thread

        return Diagnoser(self.models_dir)

    def _models_ready(self, diagnoser) -> None:
        self.diagnoser = diagnoser
        self.set_status(f"Models ready (version {diagnoser.model_version}).")
        self.model_label.configure(text=model_text(diagnoser.manifest, None))
        self.render_buttons()

    def _models_failed(self, error: BaseException) -> None:
        self.models_error = str(error) if isinstance(error, BoneFracError) else f"unexpected error ({error})"
        self.set_status("The models could not be loaded: predictions are off.")
        self.show_error("Models unavailable", f"The models could not be loaded: {self.models_error}")
        self.render_buttons()

    # ---------- opening ----------
    def open_dialog(self) -> None:
        chosen = filedialog.askopenfilenames(
            parent=self, title="Open X-rays", filetypes=OPEN_TYPES, initialdir=self.settings.last_folder(OPEN)
        )
        if chosen:  # cancel returns an empty tuple: nothing changes
            self.settings.remember_folder(OPEN, Path(chosen[0]).parent)
            self.load_paths([Path(p) for p in chosen])

    def open_folder_dialog(self) -> None:
        chosen = filedialog.askdirectory(
            parent=self, title="Open a folder of X-rays", initialdir=self.settings.last_folder(OPEN)
        )
        if chosen:
            self.settings.remember_folder(OPEN, Path(chosen))
            self.open_folder(Path(chosen))

    def open_folder(self, folder: Path) -> None:
        """The folder's studies in the worklist (one at a time: a new folder replaces it)."""
        if self.worklist is not None and self.worklist.winfo_exists():
            self.worklist.destroy()
        self.worklist = WorklistWindow(self, folder)

    def load_paths(
        self,
        paths: list[Path],
        stored: dict[Path, HistoryRow] | None = None,
        results: dict[Path, Diagnosis] | None = None,
        study: StudyDiagnosis | None = None,
    ) -> None:
        """Read the files on the worker thread; `stored`: their results kept in the history;
        `results` (and their `study`): their diagnoses from this session, shown in full as
        when just predicted, for the files still as they were diagnosed."""
        self.save_note()  # the note on screen reaches its rows before its study leaves the screen
        self.generation += 1
        generation = self.generation
        self.loading = True
        self.set_status(f"Reading {len(paths)} file(s)…", busy=True)
        self.render_buttons()

        def read_all() -> tuple[list[ViewState], list[str]]:
            views, errors = [], []
            for path in paths:
                try:
                    views.append(ViewState(path=path, xray=read_xray(path)))
                except BoneFracError as error:
                    errors.append(f"{path.name}: {error}")
            return views, errors

        known = _Known(stored or {}, results or {}, study)
        self.tasks.submit(read_all, lambda result: self._loaded(generation, *result, known), self._unexpected)

    def _loaded(self, generation: int, views: list[ViewState], errors: list[str], known: _Known) -> None:
        if generation != self.generation:
            return
        self.loading = False
        if errors:
            title = "The file could not be opened" if len(errors) == 1 else "Some files could not be opened"
            self.show_error(title, "\n".join(errors))
        if not views:
            self.set_status("No image loaded." if not self.views else "Kept the images already open.")
            self.render_buttons()
            return
        for view in views:
            view.stored = known.stored.get(view.path)
            view.history_id = view.stored.id if view.stored else None
            result = known.results.get(view.path)
            if result is not None and result.file_sha256 == view.xray.file_sha256:  # not changed since
                view.diagnosis = result
        # The study verdict only with every one of its views on screen, each with its result.
        complete = all(view.diagnosis is not None for view in views) and len(views) == len(known.results)
        # A study with its results opens at its most suspicious view: the one its verdict is about.
        self.views, self.current = views, most_suspicious(views)
        self.study = known.study if complete and len(views) > 1 else None
        # The note belongs to the study on screen: a new study starts with its own (or none).
        self.saved_note = next((v.stored.note for v in views if v.stored), "")
        self.note_entry.delete(0, "end")
        if self.saved_note:
            self.note_entry.insert(0, self.saved_note)
        paths = [view.path for view in views]
        if any(view.diagnosis is not None for view in views):
            self.set_status(f"{len(views)} image(s) loaded {folder_text(paths)} with their results from this session.")
        else:
            self.set_status(f"{len(views)} image(s) loaded {folder_text(paths)}. Press Predict (Ctrl+P).")
        self.render_thumbnails()
        self.render_all()

    # ---------- predicting ----------
    def predict(self) -> None:
        if not self.can_predict():
            return
        self.predicting = True
        generation = self.generation
        xrays = [view.xray for view in self.views]  # the images on screen: each file is read once
        diagnoser = self.diagnoser
        self.set_status(f"Predicting {len(xrays)} image(s)…", busy=True)
        self.render_buttons()

        def run() -> tuple[list[Outcome], StudyDiagnosis | None]:
            outcomes = list(diagnoser.diagnose_many(xrays))
            done = [outcome.diagnosis for outcome in outcomes if outcome.diagnosis is not None]
            return outcomes, (diagnoser.aggregate_study(done) if len(done) > 1 else None)

        self.tasks.submit(run, lambda result: self._predicted(generation, *result), self._unexpected)

    def _predicted(self, generation: int, outcomes: list[Outcome], study: StudyDiagnosis | None) -> None:
        self.predicting = False
        if generation != self.generation:
            self.render_buttons()
            return
        note = self.note_entry.get().strip()
        errors = []
        for view, outcome in zip(self.views, outcomes):  # one outcome per view, in order
            if outcome.error is not None:
                errors.append(f"{view.path.name}: {outcome.error}")
            else:
                view.diagnosis = outcome.diagnosis
        self.remember_views([view for view in self.views if view.diagnosis is not None], note, study)
        self.saved_note = note
        self.study = study
        if errors:
            self.show_error("Some images could not be diagnosed", "\n".join(errors))
        done = sum(1 for v in self.views if v.diagnosis is not None)
        self.set_status(f"Prediction finished for {done} image(s).")
        self.render_thumbnails()
        self.render_all()

    def remember_views(self, views: list[ViewState], note: str, study: StudyDiagnosis | None) -> None:
        """Put diagnosed views in the history (Predict here, and each study of the worklist);
        the views of a study of several share one study id."""
        study_id = uuid.uuid4().hex if study is not None else None
        for view in views:
            view.history_id = self._remember(view, note, study_id, study)
            if view.history_id is not None:  # a reopen this session shows the result in full
                self.session_results[view.history_id] = view.diagnosis
        if study_id is not None:
            self.session_studies[study_id] = (study, len(views))

    def _remember(self, view: ViewState, note: str, study_id: str | None, study: StudyDiagnosis | None) -> int | None:
        if self.history is None or view.diagnosis is None:
            return None
        try:
            return self.history.add(view.diagnosis, str(view.path), note=note, study_id=study_id, study=study)
        except (OSError, sqlite3.Error) as error:
            self.show_error("History not saved", f"The result could not be added to the history ({error}).")
            return None

    def save_note(self) -> None:
        """Put the note as typed on the history rows of the views on screen (a note typed after
        Predict, too), so the history and the report always say the same."""
        note = self.note_entry.get().strip()
        ids = [view.history_id for view in self.views if view.history_id is not None]
        if self.history is None or not ids or note == self.saved_note:
            return
        try:
            self.history.set_note(ids, note)
        except (OSError, sqlite3.Error) as error:
            self.show_error("Note not saved", f"The note could not be saved in the history ({error}).")
            return
        self.saved_note = note

    def _unexpected(self, error: BaseException) -> None:
        self.predicting = False
        self.loading = False
        self.set_status("Something went wrong; the app is still running.")
        self.show_error("Unexpected problem", f"{type(error).__name__}: {error}")
        self.render_buttons()

    def can_predict(self) -> bool:
        return bool(self.views) and self.diagnoser is not None and not (self.predicting or self.loading)

    # ---------- rendering ----------
    @property
    def current_view(self) -> ViewState | None:
        return self.views[self.current] if self.views else None

    def render_all(self) -> None:
        self.render_image()
        self.render_result()
        self.render_buttons()

    def render_buttons(self) -> None:
        self.predict_button.configure(state="normal" if self.can_predict() else "disabled")
        has_result = any(v.diagnosis is not None for v in self.views)
        self.report_button.configure(state="normal" if has_result and not self.writing_report else "disabled")
        shown = self.current_view is not None and self.current_view.diagnosis is not None
        self.dicom_button.configure(state="normal" if shown and not self.writing_report else "disabled")
        self.history_button.configure(state="normal" if self.history is not None else "disabled")
        if not (self.tasks.busy or self.predicting or self.loading or self.writing_report):
            self.progress.stop()
            self.progress.pack_forget()

    def render_image(self) -> None:
        view = self.current_view
        self._render_file(view)
        diagnosis = view.diagnosis if view else None
        with_heatmap = bool(self.heatmap_switch.get()) and diagnosis is not None and diagnosis.heatmap is not None
        if with_heatmap:
            self.legend.describe(diagnosis.heatmap_kind)
        else:
            self.legend.hint(heatmap_hint(diagnosis) if view is not None else "")
        if view is None:
            self._render_outlines(None, None)
            self.viewer.show(None)
            return
        outlines = outline_mask(diagnosis, view.xray.width, view.xray.height)
        self._render_outlines(diagnosis, outlines)
        shown_outlines = outlines if self.outlines_wanted else None
        # The viewer draws the XRay as adjusted on screen; the XRay itself stays as read.
        self.viewer.show(view.xray, diagnosis.heatmap if with_heatmap else None, shown_outlines)

    def _outlines_toggled(self) -> None:
        self.outlines_wanted = bool(self.outlines_switch.get())
        self.render_image()

    def _render_outlines(self, diagnosis: Diagnosis | None, outlines: np.ndarray | None) -> None:
        """The Outlines switch is usable only for a result with a fracture map; the panel line
        says what it outlines, or why it cannot. Disabled, it shows "off", as nothing is outlined;
        the user's choice comes back with the next result that has a map."""
        usable = outlines_apply(diagnosis)
        self.outlines_switch.configure(state="normal" if usable else "disabled")
        if usable and self.outlines_wanted:
            self.outlines_switch.select()
        else:
            self.outlines_switch.deselect()
        self._set_line(self.outlines_label, outlines_text(diagnosis, outlines is not None))

    def _render_file(self, view: ViewState | None) -> None:
        """The open file's name and folder, above the image and in the title bar."""
        if view is None:
            self.file_label.configure(text="")
            self.title(TITLE)
            return
        scaling = ctk.ScalingTracker.get_widget_scaling(self.file_label)
        room = self.file_label.winfo_width() - 8  # its own padding

        def fits(text: str) -> bool:
            return room <= 1 or self.file_font.measure(text) * scaling <= room  # 1: not laid out yet

        self.file_label.configure(text=file_text(view.path, self.current, len(self.views), fits))
        self.title(f"{view.path.name} — bonefrac")

    def _render_verdict(self, verdict: Verdict | None) -> None:
        if verdict is None:
            self.verdict_label.configure(text="—", fg_color="transparent", text_color=("gray10", "gray90"))
        else:
            self.verdict_label.configure(
                text=VERDICT_LABELS[verdict], fg_color=VERDICT_COLOURS[verdict], text_color="white"
            )

    @staticmethod
    def _set_line(label: ctk.CTkLabel, text: str) -> None:
        """An optional line of the panel: hidden when empty, so it leaves no gap."""
        label.configure(text=text)
        if text:
            label.grid()
        else:
            label.grid_remove()

    def render_result(self) -> None:
        view = self.current_view
        diagnosis = view.diagnosis if view else None
        manifest = self.diagnoser.manifest if self.diagnoser else None
        self._set_line(self.skill_label, "")
        if diagnosis is None and view is not None and view.stored is not None:
            stored = view.stored  # reopened from the history: its stored result, said to be stored
            confidence = confidence_text(stored.part_confidence)
            self.part_label.configure(text=f"{stored.part.capitalize()} — {confidence} confidence")
            self._render_verdict(Verdict(stored.verdict))
            self.probability_label.configure(text=stored_text(stored))
            self._set_line(self.threshold_label, "")
        elif diagnosis is None:
            self.part_label.configure(text="—")
            self._render_verdict(None)
            self.probability_label.configure(text="Not predicted yet." if view else "")
            self._set_line(self.threshold_label, "")
        else:
            self.part_label.configure(text=part_text(diagnosis))
            self._render_verdict(diagnosis.verdict)
            self.probability_label.configure(text=probability_text(diagnosis))
            self._set_line(self.threshold_label, threshold_text(diagnosis.thresholds))
            if diagnosis.supported and manifest is not None:
                self._set_line(self.skill_label, skill_text(manifest, diagnosis.part))
        self.model_label.configure(text=model_text(manifest, diagnosis))
        study = ""
        if self.study is not None:
            study = study_text(self.study)
            if self.study.fracture_probability is not None and manifest is not None:
                study += f"\n{skill_text(manifest, self.study.part)}"
        self._set_line(self.study_label, study)

    def render_thumbnails(self) -> None:
        for child in self.thumbnails.winfo_children():
            child.destroy()
        self.thumbnail_buttons = []
        if len(self.views) < 2:
            self.thumbnails.grid_remove()  # no empty strip under a single image
            return
        self.thumbnails.grid()
        for index, view in enumerate(self.views):
            small = Image.fromarray(view.xray.as_uint8(), mode="L")
            small.thumbnail((64, 64))
            label = view.path.name[:14]
            if view.diagnosis is not None:
                label += f"\n{VERDICT_LABELS[view.diagnosis.verdict]}"
            button = ctk.CTkButton(
                self.thumbnails,
                text=label,
                image=ctk.CTkImage(light_image=small, dark_image=small, size=small.size),
                compound="top",
                width=96,
                fg_color=("gray70", "gray30") if index == self.current else "transparent",
                text_color=("gray10", "gray90"),
                command=lambda i=index: self.select_view(i),
            )
            button.pack(side="left", padx=4, pady=4)
            self.thumbnail_buttons.append(button)

    def select_view(self, index: int) -> None:
        if 0 <= index < len(self.views):
            self.current = index
            self.render_thumbnails()
            self.render_image()
            self.render_result()

    def set_status(self, text: str, busy: bool = False) -> None:
        self.status_label.configure(text=text)
        if busy and not self.progress.winfo_manager():
            self.progress.pack(side="left", padx=(4, 10), pady=4, before=self.status_label)
            self.progress.start()

    def show_error(self, title: str, message: str) -> MessageDialog:
        dialog = MessageDialog(self, title, message)
        self.dialogs.append(dialog)
        return dialog

    # ---------- saving ----------
    def ask_save_path(self, title: str, suggested: str, filetypes: list[tuple[str, str]]) -> Path | None:
        """A save dialog in the last folder used, suggesting a file name; None when cancelled."""
        path = filedialog.asksaveasfilename(
            parent=self,
            title=title,
            initialdir=self.settings.last_folder(SAVE),
            initialfile=suggested,
            defaultextension=Path(suggested).suffix,
            filetypes=filetypes,
        )
        if not path:
            return None
        self.settings.remember_folder(SAVE, Path(path).parent)
        return Path(path)

    def suggested_name(self, ending: str) -> str:
        """`<image>_report.pdf` and the like, after the image on screen."""
        view = self.current_view
        return f"{view.path.stem if view else 'bonefrac'}_{ending}"

    def screenshot_dialog(self) -> None:
        try:
            image = grab_window(self)  # the window as the user sees it, before a dialog covers it
        except Exception as error:  # any capture backend's failure becomes a dialog
            self.show_error("Screenshot not taken", f"The window could not be captured: {error}")
            return
        path = self.ask_save_path("Save screenshot", self.suggested_name("screenshot.png"), [("PNG image", "*.png")])
        if path is not None:
            self.save_screenshot(path, image)

    def save_screenshot(self, path: Path, image: Image.Image | None = None) -> bool:
        try:
            save_window_screenshot(self, path, image)
        except Exception as error:  # any capture backend's failure becomes a dialog
            self.show_error("Screenshot not saved", f"The screenshot could not be saved to {path}: {error}")
            return False
        self.set_status(f"Screenshot saved: {path.name} in {path.parent}")
        return True

    def toggle_patient_identifiers(self) -> None:
        """Remembered between sessions; off by default (a report may leave the workstation)."""
        self.settings.patient_identifiers_on_reports = bool(self.identifiers_switch.get())

    def report_dialog(self) -> None:
        if not any(v.diagnosis for v in self.views):
            return
        path = self.ask_save_path(
            "Save report", self.suggested_name("report.pdf"), [("PDF report", "*.pdf"), ("PNG report", "*.png")]
        )
        if path is not None:
            self.save_report(path)

    def save_report(self, path: Path) -> None:
        """Compose and write the report on the worker thread (full-resolution images make it
        take a second or more); the window says when it is saved or why it was not."""
        from app.report import write_report

        self.save_note()  # the history gets the note the report prints
        views = [(v.xray, v.diagnosis) for v in self.views if v.diagnosis is not None]
        study, note, manifest = self.study, self.note_entry.get().strip(), self.diagnoser.manifest
        identifiers = self.settings.patient_identifiers_on_reports
        self.writing_report = True  # one report at a time: the button waits for this one
        self.set_status(f"Writing report {path.name}…", busy=True)
        self.render_buttons()
        self.tasks.submit(
            lambda: write_report(path, views, manifest, study=study, note=note, patient_identifiers=identifiers),
            on_done=lambda _: self._report_finished(f"Report saved: {path.name} in {path.parent}"),
            on_error=lambda error: self._report_failed(path, error),
        )

    def _report_finished(self, status: str) -> None:
        self.writing_report = False
        self.set_status(status)
        self.render_buttons()

    def _report_failed(self, path: Path, error: BaseException, what: str = "Report") -> None:
        reason = str(error) if isinstance(error, BoneFracError) else f"{path.name} could not be written ({error})"
        self._report_finished(f"{what} not saved: {path.name}")
        self.show_error(f"{what} not saved", reason)

    def dicom_dialog(self) -> None:
        if self.current_view is None or self.current_view.diagnosis is None:
            return
        path = self.ask_save_path("Save as DICOM", self.suggested_name("result.dcm"), [("DICOM", "*.dcm")])
        if path is not None:
            self.save_dicom(path)

    def save_dicom(self, path: Path) -> None:
        """The view on screen as a DICOM Secondary Capture, written on the worker thread like a report."""
        from app.report.dicom_result import write_dicom_result

        view, manifest = self.current_view, self.diagnoser.manifest
        self.writing_report = True
        self.set_status(f"Writing DICOM result {path.name}…", busy=True)
        self.render_buttons()
        self.tasks.submit(
            lambda: write_dicom_result(path, view.xray, view.diagnosis, manifest),
            on_done=lambda _: self._report_finished(f"DICOM result saved: {path.name} in {path.parent}"),
            on_error=lambda error: self._report_failed(path, error, "DICOM result"),
        )

    # ---------- history and about ----------
    def _open_history(self, history_path: Path | None) -> None:
        try:
            self.history = History(history_path)
        except (OSError, sqlite3.Error) as error:  # the app works without a history
            self.history = None
            message = f"The history cannot be opened ({error}); results will not be kept."
            self.after(200, lambda: self.show_error("History unavailable", message))

    def show_history(self) -> None:
        if self.history is None:
            return
        if self.history_window is not None and self.history_window.winfo_exists():
            self.history_window.destroy()
        self.history_window = HistoryWindow(self, self.history.rows(), self.reopen, self.export_history_dialog)

    def reopen(self, rows: list[HistoryRow]) -> None:
        """Open the files of a history row (a study: all its views) with their stored results;
        those predicted in this session come back in full (heatmap, saves), without predicting
        again and so without a second history entry."""
        present = {Path(row.file_path): row for row in rows if Path(row.file_path).is_file()}
        missing = [row for row in rows if Path(row.file_path) not in present]
        if missing:
            lines = [f"{r.file_name} is no longer at {r.file_path} (stored: {r.part}, {r.verdict})." for r in missing]
            self.show_error("File not found", "\n".join(lines))
        if not present:
            return
        session = self.session_results
        results = {path: session[row.id] for path, row in present.items() if row.id in session}
        study = None
        study_ids = {row.study_id for row in rows}
        if len(study_ids) == 1 and (study_id := next(iter(study_ids))) in self.session_studies:
            study, views = self.session_studies[study_id]
            if len(present) != views:  # one view of a study, or a file gone: no study verdict
                study = None
        self.load_paths(list(present), stored=present, results=results, study=study)

    def bring_to_front(self) -> None:
        """Raise the main window above the worklist and give it the keyboard (a study opened
        there is read here)."""
        if self.state() == "iconic":
            self.deiconify()
        self.lift()
        self.focus_force()

    def show_worklist(self) -> None:
        """Ctrl+L: back to the worklist, when one is open."""
        if self.worklist is not None and self.worklist.winfo_exists():
            self.worklist.bring_to_front()

    def export_history_dialog(self) -> None:
        path = self.ask_save_path(
            "Export history (file names and notes included: they may identify a patient)",
            "bonefrac_history.csv",
            [("CSV", "*.csv")],
        )
        if path is not None:
            self.export_history(path)

    def export_history(self, path: Path) -> bool:
        try:
            count = self.history.export_csv(path)
        except OSError as error:
            self.show_error("History not exported", f"The history could not be written to {path}: {error.strerror}")
            return False
        self.set_status(f"Exported {count} result(s) to {path.name}; file names and notes may identify a patient")
        return True

    def show_about(self) -> None:
        manifest = self.diagnoser.manifest if self.diagnoser is not None else None
        self.about_window = TextWindow(self, "About bonefrac", about_text(manifest, self.models_error))

    def close(self) -> None:
        self.save_note()
        self.tasks.shutdown()
        if self.history is not None:
            self.history.close()
        self.destroy()
