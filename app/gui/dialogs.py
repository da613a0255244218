"""Secondary windows: plain-words messages, the history list, and About."""

from __future__ import annotations

import tkinter
from collections.abc import Callable
from tkinter import ttk

import customtkinter as ctk

from app.history import HistoryRow


class MessageDialog(ctk.CTkToplevel):
    """A message in plain words with one OK button. Not a blocking call: the app keeps
    running underneath, and tests can read and close it like a user would."""

    def __init__(self, master: tkinter.Misc, title: str, message: str) -> None:
        super().__init__(master)
        self.title(title)
        self.message = message
        self.resizable(False, False)
        ctk.CTkLabel(self, text=message, wraplength=420, justify="left").pack(padx=20, pady=(20, 10))
        self.ok_button = ctk.CTkButton(self, text="OK", width=90, command=self.destroy)
        self.ok_button.pack(pady=(0, 16))
        self.bind("<Return>", lambda _event: self.destroy())
        self.bind("<Escape>", lambda _event: self.destroy())
        self.transient(master)
        self.after(50, self._take_focus)

    def _take_focus(self) -> None:
        if self.winfo_exists():
            self.lift()
            self.ok_button.focus_set()


class TextWindow(ctk.CTkToplevel):
    """A read-only text, for Info / About."""

    def __init__(self, master: tkinter.Misc, title: str, text: str) -> None:
        super().__init__(master)
        self.title(title)
        self.geometry("720x560")
        self.textbox = ctk.CTkTextbox(self, wrap="word")
        self.textbox.pack(fill="both", expand=True, padx=12, pady=12)
        self.textbox.insert("1.0", text)
        self.textbox.configure(state="disabled")
        self.transient(master)


class HistoryWindow(ctk.CTkToplevel):
    COLUMNS = ("created_utc", "file_name", "part", "verdict", "fracture_probability", "model_version", "note")
    HEADINGS = ("Date (UTC)", "File", "Body part", "Verdict", "Fracture p", "Model", "Note")

    def __init__(
        self,
        master: tkinter.Misc,
        rows: list[HistoryRow],
        on_reopen: Callable[[HistoryRow], None],
        on_export: Callable[[], None],
    ) -> None:
        super().__init__(master)
        self.title("History")
        self.geometry("900x420")
        self.rows = {str(row.id): row for row in rows}
        self._on_reopen = on_reopen
        self.table = ttk.Treeview(self, columns=self.COLUMNS, show="headings", selectmode="browse")
        for column, heading in zip(self.COLUMNS, self.HEADINGS):
            self.table.heading(column, text=heading)
            self.table.column(column, width={"file_name": 200, "created_utc": 170}.get(column, 100), anchor="w")
        for row in rows:
            probability = "-" if row.fracture_probability is None else f"{row.fracture_probability:.2f}"
            values = (row.created_utc, row.file_name, row.part, row.verdict, probability, row.model_version, row.note)
            self.table.insert("", "end", iid=str(row.id), values=values)
        self.table.pack(fill="both", expand=True, padx=10, pady=(10, 6))
        self.table.bind("<Double-1>", lambda _event: self.reopen_selected())
        buttons = ctk.CTkFrame(self, fg_color="transparent")
        buttons.pack(fill="x", padx=10, pady=(0, 10))
        self.reopen_button = ctk.CTkButton(buttons, text="Reopen", command=self.reopen_selected)
        self.reopen_button.pack(side="left")
        self.export_button = ctk.CTkButton(buttons, text="Export CSV…", command=on_export)
        self.export_button.pack(side="left", padx=8)
        ctk.CTkLabel(buttons, text=f"{len(rows)} result(s)").pack(side="right")
        self.transient(master)

    def reopen_selected(self) -> None:
        selection = self.table.selection()
        if selection:
            self._on_reopen(self.rows[selection[0]])
