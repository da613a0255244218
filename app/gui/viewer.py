"""The X-ray viewer: fit to the panel, zoom with the wheel or buttons, drag to pan."""

from __future__ import annotations

import tkinter

import customtkinter as ctk
from PIL import Image, ImageTk

MIN_ZOOM, MAX_ZOOM = 1.0, 8.0
BACKGROUND = "#111111"
PLACEHOLDER = "Open an X-ray (Ctrl+O) or drop files here"


class XRayViewer(ctk.CTkFrame):
    def __init__(self, master: tkinter.Misc, **kwargs) -> None:
        super().__init__(master, **kwargs)
        self.canvas = tkinter.Canvas(self, background=BACKGROUND, highlightthickness=0, cursor="fleur")
        self.canvas.pack(fill="both", expand=True)
        self.image: Image.Image | None = None
        self.zoom = 1.0  # relative to "fit"
        self.offset = (0.0, 0.0)  # pan, in canvas pixels
        self._photo: ImageTk.PhotoImage | None = None
        self._drag_from: tuple[int, int] | None = None
        self.canvas.bind("<Configure>", lambda _event: self.redraw())
        self.canvas.bind("<ButtonPress-1>", self._start_drag)
        self.canvas.bind("<B1-Motion>", self._drag)
        self.canvas.bind("<MouseWheel>", self._wheel)  # Windows, macOS
        self.canvas.bind("<Button-4>", lambda _event: self.zoom_by(1.25))  # X11 wheel up
        self.canvas.bind("<Button-5>", lambda _event: self.zoom_by(0.8))  # X11 wheel down

    def show(self, image: Image.Image | None, keep_view: bool = False) -> None:
        self.image = image
        if not keep_view:
            self.fit()
        self.redraw()

    def fit(self) -> None:
        self.zoom, self.offset = 1.0, (0.0, 0.0)
        self.redraw()

    def zoom_by(self, factor: float) -> None:
        self.zoom = min(MAX_ZOOM, max(MIN_ZOOM, self.zoom * factor))
        if self.zoom == MIN_ZOOM:
            self.offset = (0.0, 0.0)
        self.redraw()

    def _wheel(self, event: tkinter.Event) -> None:
        self.zoom_by(1.25 if event.delta > 0 else 0.8)

    def _start_drag(self, event: tkinter.Event) -> None:
        self._drag_from = (event.x, event.y)

    def _drag(self, event: tkinter.Event) -> None:
        if self._drag_from is None or self.zoom == MIN_ZOOM:
            return
        dx, dy = event.x - self._drag_from[0], event.y - self._drag_from[1]
        self._drag_from = (event.x, event.y)
        self.offset = (self.offset[0] + dx, self.offset[1] + dy)
        self.redraw()

    def redraw(self) -> None:
        self.canvas.delete("all")
        width, height = max(1, self.canvas.winfo_width()), max(1, self.canvas.winfo_height())
        if self.image is None:
            self.canvas.create_text(width // 2, height // 2, text=PLACEHOLDER, fill="#bbbbbb")
            return
        fit = min(width / self.image.width, height / self.image.height)
        scale = fit * self.zoom
        left = width / 2 + self.offset[0] - self.image.width * scale / 2
        top = height / 2 + self.offset[1] - self.image.height * scale / 2
        # Resample only the part of the image inside the canvas: at 8x zoom the whole image
        # would be hundreds of megapixels per drag event.
        visible = (
            max(0.0, left),
            max(0.0, top),
            min(float(width), left + self.image.width * scale),
            min(float(height), top + self.image.height * scale),
        )
        if visible[2] - visible[0] < 1 or visible[3] - visible[1] < 1:
            return  # panned out of sight
        source = tuple((edge - origin) / scale for edge, origin in zip(visible, (left, top, left, top)))
        size = (round(visible[2] - visible[0]), round(visible[3] - visible[1]))
        shown = self.image.resize(size, Image.Resampling.BILINEAR, box=source)
        self._photo = ImageTk.PhotoImage(shown)
        self.canvas.create_image(round(visible[0]), round(visible[1]), image=self._photo, anchor="nw")
