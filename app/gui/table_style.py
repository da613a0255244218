"""ttk tables (History, the worklist) themed like the CustomTkinter widgets around them."""

from __future__ import annotations

import tkinter
from tkinter import ttk

import customtkinter as ctk

# (background, text, heading background, selection) for each appearance mode.
_COLOURS = {"Light": ("#ffffff", "#1a1a1a", "#e3e3e3", "#3b8ed0"), "Dark": ("#242424", "#dce4ee", "#333333", "#1f538d")}


def style_table(widget: tkinter.Misc, style: str) -> None:
    """Colour the Treeview style `style` for the current Light/Dark mode; ttk widgets do not
    follow CustomTkinter's switch, so a window calls this again from `_set_appearance_mode`."""
    background, text, heading, selected = _COLOURS[ctk.get_appearance_mode()]
    styles = ttk.Style(widget)
    styles.configure(style, background=background, fieldbackground=background, foreground=text)
    styles.map(style, background=[("selected", selected)], foreground=[("selected", "#ffffff")])
    styles.configure(f"{style}.Heading", background=heading, foreground=text, relief="flat")
    styles.map(f"{style}.Heading", background=[("active", heading)])
