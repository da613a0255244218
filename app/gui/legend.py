"""The heatmap's legend: what its colours mean, and what the heatmap is not."""

from __future__ import annotations

import tkinter

import customtkinter as ctk
import numpy as np

from app.diagnosis.heatmap import colourise
from app.words import heatmap_legend


class HeatmapLegend(ctk.CTkFrame):
    """Under the image whenever one is shown: the colour ramp and its meaning while the heatmap
    is drawn, otherwise one line saying how to show it or why there is none. Always there, so
    switching the heatmap or predicting never resizes the image (it does not jump)."""

    def __init__(self, master: tkinter.Misc) -> None:
        super().__init__(master, fg_color="transparent")
        low, high, _text = heatmap_legend("")
        self.scale = ctk.CTkFrame(self, fg_color="transparent")  # low, ramp, high: hidden while off
        self.low_label = ctk.CTkLabel(self.scale, text=low)
        self.low_label.pack(side="left", padx=(0, 4))
        # The colour ramp the overlay uses, drawn from its own code so the legend cannot drift
        # (a canvas, not an image: images belong to one Tk interpreter).
        self.ramp = tkinter.Canvas(self.scale, width=160, height=12, highlightthickness=0)
        for x, (red, green, blue) in enumerate(colourise(np.linspace(0.0, 1.0, 160))):
            self.ramp.create_line(x, 0, x, 12, fill=f"#{red:02x}{green:02x}{blue:02x}")
        self.ramp.pack(side="left")
        self.high_label = ctk.CTkLabel(self.scale, text=high)
        self.high_label.pack(side="left", padx=(4, 12))  # the scale is packed by `describe`
        self.text_label = ctk.CTkLabel(self, text="", anchor="w")  # empty until an image is shown
        self.text_label.pack(side="left", fill="x", expand=True)

    def describe(self, kind: str) -> None:
        """Word the legend for the kind of map on screen (a probability map, or a relative CAM)."""
        low, high, text = heatmap_legend(kind)
        self.low_label.configure(text=low)
        self.high_label.configure(text=high)
        self.text_label.configure(text=text)
        if not self.scale.winfo_manager():
            self.scale.pack(side="left", before=self.text_label)

    def hint(self, text: str) -> None:
        """No heatmap drawn: no ramp, one line (how to show it, or why there is none)."""
        self.scale.pack_forget()
        self.text_label.configure(text=text)
