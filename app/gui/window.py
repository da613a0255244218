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
from PIL import Image

from app.diagnosis.heatmap import overlay
from app.diagnosis.value import NOTICE, Diagnosis, StudyDiagnosis, Verdict
from app.errors import BoneFracError
from app.gui.dialogs import HistoryWindow, MessageDialog, TextWindow
from app.gui.screenshot import save_window_screenshot
from app.gui.tasks import BackgroundTasks
from app.gui.text import about_text, model_text, part_text, probability_text, study_text, threshold_text
from app.gui.viewer import XRayViewer
from app.history import History, HistoryRow
from app.report.content import VERDICT_LABELS
from app.xray import XRay, read_xray

# Tk file filters are case-sensitive on Linux; DICOM files often come without any extension ("All files").
_OPENABLE_EXTENSIONS = ("png", "jpg", "jpeg", "dcm", "dicom", "bmp", "tif", "tiff", "gif", "webp")
OPEN_TYPES = [
    ("X-ray images and DICOM", " ".join(f"*.{e} *.{e.upper()}" for e in _OPENABLE_EXTENSIONS)),
    ("All files", "*"),
]
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


class BoneFracWindow(ctk.CTk, _DnDBase):
    def __init__(self, models_dir: Path | None = None, history_path: Path | None = None) -> None:
        super().__init__()
        self.title("bonefrac — fracture detection decision support")
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
        self._build()
        self._bind_keys()
        self._enable_drop()
        self.protocol("WM_DELETE_WINDOW", self.close)
        self._open_history(history_path)
        self.set_status("Loading the models…", busy=True)
        self.tasks.submit(self._load_models, self._models_ready, self._models_failed)
        self.render_buttons()

    # ---------- building ----------
    def _build(self) -> None:
        self.grid_columnconfigure(0, weight=1)
        self.grid_rowconfigure(1, weight=1)
        bar = ctk.CTkFrame(self)
        bar.grid(row=0, column=0, columnspan=2, sticky="ew", padx=8, pady=(8, 4))
        self.open_button = ctk.CTkButton(bar, text="Open X-rays…", width=120, command=self.open_dialog)
        self.predict_button = ctk.CTkButton(bar, text="Predict", width=100, command=self.predict)
        self.heatmap_switch = ctk.CTkSwitch(bar, text="Heatmap", command=self.render_image)
        self.fit_button = ctk.CTkButton(bar, text="Fit", width=50, command=lambda: self.viewer.fit())
        self.zoom_out_button = ctk.CTkButton(bar, text="−", width=36, command=lambda: self.viewer.zoom_by(0.8))
        self.zoom_in_button = ctk.CTkButton(bar, text="+", width=36, command=lambda: self.viewer.zoom_by(1.25))
        self.screenshot_button = ctk.CTkButton(bar, text="Save screenshot…", width=140, command=self.screenshot_dialog)
        self.report_button = ctk.CTkButton(bar, text="Save report…", width=120, command=self.report_dialog)
        self.history_button = ctk.CTkButton(bar, text="History", width=90, command=self.show_history)
        self.about_button = ctk.CTkButton(bar, text="About", width=80, command=self.show_about)
        self.appearance_menu = ctk.CTkOptionMenu(
            bar, values=["System", "Light", "Dark"], width=100, command=ctk.set_appearance_mode
        )
        for widget in (self.open_button, self.predict_button, self.heatmap_switch, self.fit_button):
            widget.pack(side="left", padx=4, pady=6)
        for widget in (self.zoom_out_button, self.zoom_in_button):
            widget.pack(side="left", padx=2, pady=6)
        for widget in (self.appearance_menu, self.about_button, self.history_button):
            widget.pack(side="right", padx=4, pady=6)
        for widget in (self.report_button, self.screenshot_button):
            widget.pack(side="right", padx=4, pady=6)

        left = ctk.CTkFrame(self, fg_color="transparent")
        left.grid(row=1, column=0, sticky="nsew", padx=(8, 4), pady=4)
        left.grid_rowconfigure(0, weight=1)
        left.grid_columnconfigure(0, weight=1)
        self.viewer = XRayViewer(left)
        self.viewer.grid(row=0, column=0, sticky="nsew")
        self.thumbnails = ctk.CTkFrame(left, height=84)
        self.thumbnails.grid(row=1, column=0, sticky="ew", pady=(6, 0))

        panel = ctk.CTkFrame(self, width=340)
        panel.grid(row=1, column=1, sticky="nsew", padx=(4, 8), pady=4)
        panel.grid_propagate(False)
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
        self.study_label = ctk.CTkLabel(panel, text="", anchor="w", justify="left", wraplength=300, font=title_font)
        self.study_label.grid(row=6, sticky="ew", padx=14, pady=(12, 0))
        self.model_label = ctk.CTkLabel(panel, text="", anchor="w", justify="left", wraplength=300)
        self.model_label.grid(row=7, sticky="ew", padx=14, pady=(12, 0))
        ctk.CTkLabel(panel, text="Note for the report", anchor="w").grid(row=8, sticky="ew", padx=14, pady=(16, 0))
        self.note_entry = ctk.CTkEntry(panel, placeholder_text="optional")
        self.note_entry.grid(row=9, sticky="ew", padx=14)

        status = ctk.CTkFrame(self, fg_color="transparent")
        status.grid(row=2, column=0, columnspan=2, sticky="ew", padx=8)
        self.progress = ctk.CTkProgressBar(status, mode="indeterminate", width=160)
        self.progress.pack(side="left", padx=(4, 10), pady=4)
        self.progress.set(0)
        self.status_label = ctk.CTkLabel(status, text="", anchor="w")
        self.status_label.pack(side="left", fill="x", expand=True)
        self.notice_label = ctk.CTkLabel(
            self, text=NOTICE, fg_color="#fff3cd", text_color="#5c4400", corner_radius=6, height=30
        )
        self.notice_label.grid(row=3, column=0, columnspan=2, sticky="ew", padx=8, pady=(2, 8))

    def _bind_keys(self) -> None:
        shortcuts = {
            "<Control-o>": self.open_dialog,
            "<Control-p>": self.predict,
            "<Control-s>": self.screenshot_dialog,
            "<Control-r>": self.report_dialog,
            "<Control-h>": self.show_history,
            "<F1>": self.show_about,
            "<Control-plus>": lambda: self.viewer.zoom_by(1.25),
            "<Control-equal>": lambda: self.viewer.zoom_by(1.25),
            "<Control-minus>": lambda: self.viewer.zoom_by(0.8),
            "<Control-0>": lambda: self.viewer.fit(),
        }
        for sequence, action in shortcuts.items():
            self.bind(sequence, lambda _event, act=action: act())

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
        if paths:
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
        chosen = filedialog.askopenfilenames(parent=self, title="Open X-rays", filetypes=OPEN_TYPES)
        if chosen:  # cancel returns an empty tuple: nothing changes
            self.load_paths([Path(p) for p in chosen])

    def load_paths(self, paths: list[Path]) -> None:
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

        self.tasks.submit(read_all, lambda result: self._loaded(generation, *result), self._unexpected)

    def _loaded(self, generation: int, views: list[ViewState], errors: list[str]) -> None:
        if generation != self.generation:
            return
        self.loading = False
        if errors:
            self.show_error("Some files could not be opened", "\n".join(errors))
        if not views:
            self.set_status("No image loaded." if not self.views else "Kept the images already open.")
            self.render_buttons()
            return
        self.views, self.current, self.study = views, 0, None
        self.set_status(f"{len(views)} image(s) loaded. Press Predict (Ctrl+P).")
        self.render_thumbnails()
        self.render_all()

    # ---------- predicting ----------
    def predict(self) -> None:
        if not self.can_predict():
            return
        self.predicting = True
        generation = self.generation
        paths = [view.path for view in self.views]
        diagnoser = self.diagnoser
        self.set_status(f"Predicting {len(paths)} image(s)…", busy=True)
        self.render_buttons()

        def run() -> tuple[list[tuple[Path, XRay | None, Diagnosis | BoneFracError]], StudyDiagnosis | None]:
            results = list(diagnoser.diagnose_files(paths))
            done = [r[2] for r in results if isinstance(r[2], Diagnosis)]
            return results, (diagnoser.aggregate_study(done) if len(done) > 1 else None)

        self.tasks.submit(run, lambda result: self._predicted(generation, *result), self._unexpected)

    def _predicted(self, generation: int, results: list, study: StudyDiagnosis | None) -> None:
        self.predicting = False
        if generation != self.generation:
            self.render_buttons()
            return
        errors = [f"{path.name}: {item}" for path, _, item in results if isinstance(item, BoneFracError)]
        by_path = {path: (xray, item) for path, xray, item in results if isinstance(item, Diagnosis)}
        study_id = uuid.uuid4().hex if study is not None else None
        note = self.note_entry.get().strip()
        for view in self.views:
            if view.path in by_path:
                view.xray, view.diagnosis = by_path[view.path]
                self._remember(view, note, study_id)
        self.study = study
        if errors:
            self.show_error("Some images could not be diagnosed", "\n".join(errors))
        done = sum(1 for v in self.views if v.diagnosis is not None)
        self.set_status(f"Prediction finished for {done} image(s).")
        self.render_thumbnails()
        self.render_all()

    def _remember(self, view: ViewState, note: str, study_id: str | None) -> None:
        if self.history is None or view.diagnosis is None:
            return
        try:
            self.history.add(view.diagnosis, str(view.path), note=note, study_id=study_id)
        except (OSError, sqlite3.Error) as error:
            self.show_error("History not saved", f"The result could not be added to the history ({error}).")

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
        self.history_button.configure(state="normal" if self.history is not None else "disabled")
        if not self.tasks.busy and not self.predicting:
            self.progress.stop()
            self.progress.configure(mode="determinate")
            self.progress.set(0)

    def render_image(self) -> None:
        view = self.current_view
        if view is None:
            self.viewer.show(None)
            return
        diagnosis = view.diagnosis
        if self.heatmap_switch.get() and diagnosis is not None and diagnosis.heatmap is not None:
            image = overlay(view.xray, diagnosis.heatmap)
        else:
            image = Image.fromarray(view.xray.as_uint8(), mode="L")
        same_image = self.viewer.image is not None and self.viewer.image.size == image.size
        self.viewer.show(image, keep_view=same_image)

    def render_result(self) -> None:
        view = self.current_view
        diagnosis = view.diagnosis if view else None
        if diagnosis is None:
            self.part_label.configure(text="—")
            self.verdict_label.configure(text="—", fg_color="transparent", text_color=("gray10", "gray90"))
            self.probability_label.configure(text="Not predicted yet." if view else "")
            self.threshold_label.configure(text="")
        else:
            self.part_label.configure(text=part_text(diagnosis))
            self.verdict_label.configure(
                text=VERDICT_LABELS[diagnosis.verdict], fg_color=VERDICT_COLOURS[diagnosis.verdict], text_color="white"
            )
            self.probability_label.configure(text=probability_text(diagnosis))
            self.threshold_label.configure(text=threshold_text(diagnosis.thresholds))
        self.model_label.configure(text=model_text(self.diagnoser.manifest if self.diagnoser else None, diagnosis))
        self.study_label.configure(text=study_text(self.study) if self.study else "")

    def render_thumbnails(self) -> None:
        for child in self.thumbnails.winfo_children():
            child.destroy()
        self.thumbnail_buttons = []
        if len(self.views) < 2:
            return
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
        if busy:
            self.progress.configure(mode="indeterminate")
            self.progress.start()

    def show_error(self, title: str, message: str) -> MessageDialog:
        dialog = MessageDialog(self, title, message)
        self.dialogs.append(dialog)
        return dialog

    # ---------- saving ----------
    def screenshot_dialog(self) -> None:
        path = filedialog.asksaveasfilename(
            parent=self, title="Save screenshot", defaultextension=".png", filetypes=[("PNG image", "*.png")]
        )
        if path:
            self.save_screenshot(Path(path))

    def save_screenshot(self, path: Path) -> bool:
        try:
            save_window_screenshot(self, path)
        except Exception as error:  # any capture backend's failure becomes a dialog
            self.show_error("Screenshot not saved", f"The screenshot could not be saved to {path}: {error}")
            return False
        self.set_status(f"Screenshot saved: {path.name}")
        return True

    def report_dialog(self) -> None:
        if not any(v.diagnosis for v in self.views):
            return
        path = filedialog.asksaveasfilename(
            parent=self,
            title="Save report",
            defaultextension=".pdf",
            filetypes=[("PDF report", "*.pdf"), ("PNG report", "*.png")],
        )
        if path:
            self.save_report(Path(path))

    def save_report(self, path: Path) -> None:
        """Compose and write the report on the worker thread (full-resolution images make it
        take a second or more); the window says when it is saved or why it was not."""
        from app.report import write_report

        views = [(v.xray, v.diagnosis) for v in self.views if v.diagnosis is not None]
        study, note, manifest = self.study, self.note_entry.get(), self.diagnoser.manifest
        self.writing_report = True  # one report at a time: the button waits for this one
        self.set_status(f"Writing report {path.name}…", busy=True)
        self.render_buttons()
        self.tasks.submit(
            lambda: write_report(path, views, manifest, study=study, note=note),
            on_done=lambda _: self._report_finished(f"Report saved: {path.name}"),
            on_error=lambda error: self._report_failed(path, error),
        )

    def _report_finished(self, status: str) -> None:
        self.writing_report = False
        self.set_status(status)
        self.render_buttons()

    def _report_failed(self, path: Path, error: BaseException) -> None:
        reason = str(error) if isinstance(error, BoneFracError) else f"{path.name} could not be written ({error})"
        self._report_finished(f"Report not saved: {path.name}")
        self.show_error("Report not saved", reason)

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

    def reopen(self, row: HistoryRow) -> None:
        path = Path(row.file_path)
        stored = f"Stored result from {row.created_utc}: {row.part}, {row.verdict}"
        if row.fracture_probability is not None:
            stored += f" (p={row.fracture_probability:.2f})"
        if not path.is_file():
            self.show_error("File not found", f"{row.file_name} is no longer at {path}.\n{stored}.")
            return
        self.load_paths([path])
        self.after(100, lambda: self.set_status(f"{stored}, model {row.model_version}. Press Predict to re-run."))

    def export_history_dialog(self) -> None:
        path = filedialog.asksaveasfilename(
            parent=self,
            title="Export history (file names and notes included: they may identify a patient)",
            defaultextension=".csv",
            filetypes=[("CSV", "*.csv")],
        )
        if path:
            self.export_history(Path(path))

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
        TextWindow(self, "About bonefrac", about_text(manifest, self.models_error))

    def close(self) -> None:
        self.tasks.shutdown()
        if self.history is not None:
            self.history.close()
        self.destroy()
