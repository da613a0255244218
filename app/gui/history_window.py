"""The history list: local times, a study's views grouped under one row, themed like the app."""

from __future__ import annotations

import tkinter
from collections.abc import Callable
from tkinter import font as tkfont
from tkinter import ttk

import customtkinter as ctk

from app.diagnosis.value import Verdict
from app.gui.dialogs import add_close_button, place_over
from app.gui.table_style import style_table
from app.history import HistoryRow, local_time
from app.words import VERDICT_LABELS

COLUMNS = ("time", "file_name", "part", "verdict", "probability", "model_version", "note")
HEADINGS = ("Date (local time)", "File", "Body part", "Verdict", "Fracture probability", "Model", "Note")
_MAX_WIDTH = {"file_name": 260, "part": 260, "note": 280}  # long names and notes are cut, never the dates or versions
_STYLE = "History.Treeview"


def row_values(row: HistoryRow) -> tuple[str, ...]:
    probability = "—" if row.fracture_probability is None else f"{row.fracture_probability:.2f}"
    verdict = VERDICT_LABELS[Verdict(row.verdict)]
    return (local_time(row.created_utc), row.file_name, row.part, verdict, probability, row.model_version, row.note)


def study_values(rows: list[HistoryRow]) -> tuple[str, ...]:
    """A study's own row: its views' parts, and the study verdict as predicted (each view's row
    keeps it; rows stored before it was kept have none)."""
    first = rows[0]
    parts = "/".join(sorted({row.part for row in rows}))
    verdict = "" if first.study_verdict is None else VERDICT_LABELS[Verdict(first.study_verdict)]
    probability = "" if first.study_probability is None else f"{first.study_probability:.2f}"
    return (
        local_time(first.created_utc),
        f"Study of {len(rows)} views",
        parts,
        verdict,
        probability,
        first.model_version,
        first.note,
    )


class HistoryWindow(ctk.CTkToplevel):
    def __init__(
        self,
        master: tkinter.Misc,
        rows: list[HistoryRow],
        on_reopen: Callable[[list[HistoryRow]], None],
        on_export: Callable[[], None],
    ) -> None:
        super().__init__(master)
        self.title("History")
        self._on_reopen = on_reopen
        self.items: dict[str, list[HistoryRow]] = {}  # tree item -> the rows it reopens
        self.table = ttk.Treeview(self, columns=COLUMNS, show="tree headings", selectmode="browse", style=_STYLE)
        self._style_table()
        width = self._fill(rows)
        scrollbar = ttk.Scrollbar(self, orient="horizontal", command=self.table.xview)
        self.table.configure(xscrollcommand=scrollbar.set)
        buttons = ctk.CTkFrame(self, fg_color="transparent")
        buttons.pack(side="bottom", fill="x", padx=10, pady=(0, 10))
        scrollbar.pack(side="bottom", fill="x", padx=10)
        self.table.pack(fill="both", expand=True, padx=10, pady=(10, 0))
        self.table.bind("<Double-1>", lambda _event: self.reopen_selected())
        self.table.bind("<Return>", lambda _event: self.reopen_selected())
        self.reopen_button = ctk.CTkButton(buttons, text="Reopen", command=self.reopen_selected)
        self.reopen_button.pack(side="left")
        self.export_button = ctk.CTkButton(buttons, text="Export CSV…", command=on_export)
        self.export_button.pack(side="left", padx=8)
        self.close_button = add_close_button(self, buttons)
        self.close_button.pack(side="right")
        ctk.CTkLabel(buttons, text=f"{len(rows)} result(s)").pack(side="right", padx=12)
        self.transient(master)
        # As wide as its columns (within the screen), over the main window.
        place_over(self, master, min(width + 40, master.winfo_screenwidth() - 40), 440)
        self.after(50, self.focus_force)  # so Escape reaches it

    def _fill(self, rows: list[HistoryRow]) -> int:
        """Insert the rows; return the width the columns need."""
        studies: dict[str, list[HistoryRow]] = {}
        for row in rows:
            if row.study_id:
                studies.setdefault(row.study_id, []).append(row)
        shown: list[tuple[str, ...]] = []
        for row in rows:
            iid = f"row-{row.id}"
            parent = ""
            if row.study_id:
                parent = f"study-{row.study_id}"
                if parent not in self.items:
                    views = sorted(studies[row.study_id], key=lambda r: r.id)
                    self.items[parent] = views
                    shown.append(study_values(views))
                    self.table.insert("", "end", iid=parent, values=shown[-1], open=True)
            self.items[iid] = [row]
            shown.append(row_values(row))
            self.table.insert(parent, 0 if parent else "end", iid=iid, values=shown[-1])
        return self._fit_columns(shown)

    def _fit_columns(self, shown: list[tuple[str, ...]]) -> int:
        """Each column as wide as its widest entry (the font measures it), so nothing is cut."""
        measure = tkfont.nametofont("TkDefaultFont").measure
        heading_measure = tkfont.nametofont("TkHeadingFont").measure
        self.table.column("#0", width=28, stretch=False)
        total = 28
        for index, (column, heading) in enumerate(zip(COLUMNS, HEADINGS)):
            self.table.heading(column, text=heading, anchor="w")
            widest = max([heading_measure(heading), *(measure(values[index]) for values in shown)]) + 20
            width = min(widest, _MAX_WIDTH.get(column, widest))
            self.table.column(column, width=width, anchor="w", stretch=column == "note")
            total += width
        return total

    def _style_table(self) -> None:
        style_table(self, _STYLE)

    def _set_appearance_mode(self, mode_string: str) -> None:
        # CustomTkinter calls this on every Light/Dark switch; ttk widgets need restyling by hand.
        super()._set_appearance_mode(mode_string)
        self._style_table()

    def reopen_selected(self) -> None:
        selection = self.table.selection()
        if selection:
            self._on_reopen(self.items[selection[0]])
