"""Secondary windows: plain-words messages and About, placed over the main window."""

from __future__ import annotations

import tkinter

import customtkinter as ctk


def place_over(
    window: tkinter.Toplevel, master: tkinter.Misc, width: int | None = None, height: int | None = None
) -> None:
    """Centre `window` on the main window (not the screen's corner), kept on the screen; without
    a size, at its own requested size."""
    master.update_idletasks()
    size = "" if width is None or height is None else f"{width}x{height}"
    width, height = width or window.winfo_reqwidth(), height or window.winfo_reqheight()
    left = master.winfo_rootx() + (master.winfo_width() - width) // 2
    top = master.winfo_rooty() + (master.winfo_height() - height) // 3
    left = max(0, min(left, master.winfo_screenwidth() - width))
    top = max(0, min(top, master.winfo_screenheight() - height))
    window.geometry(f"{size}+{left}+{top}")


def add_close_button(window: ctk.CTkToplevel, parent: tkinter.Misc) -> ctk.CTkButton:
    """A Close button, and Escape closes too."""
    button = ctk.CTkButton(parent, text="Close", width=90, command=window.destroy)
    window.bind("<Escape>", lambda _event: window.destroy())
    return button


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
        place_over(self, master)
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
        place_over(self, master, 720, 560)
        self.close_button = add_close_button(self, self)
        self.close_button.pack(side="bottom", anchor="e", padx=12, pady=(0, 12))
        self.textbox = ctk.CTkTextbox(self, wrap="word")
        self.textbox.pack(fill="both", expand=True, padx=12, pady=12)
        self.textbox.insert("1.0", text)
        self.textbox.configure(state="disabled")
        self.transient(master)
        self.after(50, self.focus_force)  # so Escape reaches it
