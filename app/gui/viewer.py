"""The X-ray viewer: fit to the panel, zoom with the wheel or buttons, drag to pan; drag with
the right button for window/level; invert, rotate and flip (see `view_adjust`)."""

from __future__ import annotations

import tkinter

import customtkinter as ctk
import numpy as np
from PIL import Image, ImageTk

from app.gui.view_adjust import ViewAdjustment, adjustment_text, displayed, header_window_text
from app.xray import XRay

MIN_ZOOM, MAX_ZOOM = 1.0, 8.0
BACKGROUND = "#111111"
PLACEHOLDER = "Open an X-ray (Ctrl+O) or drop files here"


class XRayViewer(ctk.CTkFrame):
    def __init__(self, master: tkinter.Misc, **kwargs) -> None:
        super().__init__(master, **kwargs)
        self.canvas = tkinter.Canvas(self, background=BACKGROUND, highlightthickness=0, cursor="fleur")
        self.canvas.pack(fill="both", expand=True)
        self.xray: XRay | None = None
        self.heatmap: np.ndarray | None = None
        self.outlines: np.ndarray | None = None  # suspicious regions' outline pixels, on the XRay's grid
        self.adjustment = ViewAdjustment()
        self.image: Image.Image | None = None  # the picture as adjusted, before zoom and pan
        self.caption = ""  # the window and adjustments, in the canvas' corner
        self.zoom = 1.0  # relative to "fit"
        self.offset = (0.0, 0.0)  # pan, in canvas pixels
        self._photo: ImageTk.PhotoImage | None = None
        self._drag_from: tuple[int, int] | None = None
        self._window_from: tuple[int, int] | None = None
        self._compose_pending = False
        self.canvas.bind("<Configure>", lambda _event: self.redraw())
        self.canvas.bind("<ButtonPress-1>", self._start_drag)
        self.canvas.bind("<B1-Motion>", self._drag)
        right = "2" if self.tk.call("tk", "windowingsystem") == "aqua" else "3"  # macOS numbers it 2
        self.canvas.bind(f"<ButtonPress-{right}>", self._start_window)
        self.canvas.bind(f"<B{right}-Motion>", self._window)
        self.canvas.bind(f"<ButtonRelease-{right}>", self._end_window)
        self.canvas.bind("<MouseWheel>", self._wheel)  # Windows, macOS
        self.canvas.bind("<Button-4>", lambda _event: self.zoom_by(1.25))  # X11 wheel up
        self.canvas.bind("<Button-5>", lambda _event: self.zoom_by(0.8))  # X11 wheel down

    def show(self, xray: XRay | None, heatmap: np.ndarray | None = None, outlines: np.ndarray | None = None) -> None:
        """Another X-ray opens fitted, at its own window; the same one (heatmap or outlines
        toggled, a result arrived) keeps zoom, pan and adjustments."""
        if xray is not self.xray:
            self.adjustment = ViewAdjustment()
            self.zoom, self.offset = 1.0, (0.0, 0.0)
        self.xray, self.heatmap, self.outlines = xray, heatmap, outlines
        self._compose()

    # ---------- adjustments (the view only: the XRay is never changed) ----------
    def adjust(self, adjustment: ViewAdjustment) -> None:
        if self.image is not None and adjustment.quarter_turns != self.adjustment.quarter_turns:
            self._turn_pan()
        if adjustment.flipped != self.adjustment.flipped:
            self.offset = (-self.offset[0], self.offset[1])  # the point in the middle stays there
        self.adjustment = adjustment
        self._compose()

    def invert(self) -> None:
        self.adjust(self.adjustment.toggled_invert())

    def rotate(self) -> None:
        self.adjust(self.adjustment.rotated())

    def flip(self) -> None:
        self.adjust(self.adjustment.toggled_flip())

    def reset(self) -> None:
        """Back to the image as opened: its own window, upright, fitted."""
        self.adjustment = ViewAdjustment()
        self.zoom, self.offset = 1.0, (0.0, 0.0)
        self._compose()

    def _turn_pan(self) -> None:
        """Turn the pan with the picture (a quarter turn clockwise on screen), so the part of the
        image in the middle of the panel stays there; zoomed in, at the same magnification."""
        width, height = self.image.size
        before, after = self._fit(width, height), self._fit(height, width)  # fit of the turned picture
        zoom = self.zoom
        if zoom > MIN_ZOOM:
            self.zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom * before / after))
        ratio = after * self.zoom / (before * zoom)
        x, y = self.offset
        self.offset = (-y * ratio, x * ratio)

    def _fit(self, image_width: int, image_height: int) -> float:
        width, height = max(1, self.canvas.winfo_width()), max(1, self.canvas.winfo_height())
        return min(width / image_width, height / image_height)

    def _start_window(self, event: tkinter.Event) -> None:
        self._window_from = (event.x, event.y)

    def _window(self, event: tkinter.Event) -> None:
        if self._window_from is None or self.xray is None:
            return
        dx, dy = event.x - self._window_from[0], event.y - self._window_from[1]
        self._window_from = (event.x, event.y)
        self.adjustment = self.adjustment.dragged(dx, dy)
        if not self._compose_pending:  # one new picture for a burst of motion events
            self._compose_pending = True
            self.after_idle(self._compose)

    def _end_window(self, _event: tkinter.Event) -> None:
        self._window_from = None

    def _compose(self) -> None:
        self._compose_pending = False
        self.image = None if self.xray is None else displayed(self.xray, self.heatmap, self.adjustment, self.outlines)
        own = header_window_text(self.xray) if self.xray is not None else ""
        self.caption = adjustment_text(self.adjustment, own)
        self.redraw()

    # ---------- zoom and pan (in screen terms, whatever the rotation) ----------
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
        self._draw_image(width, height)
        if self.caption:  # on a dark band, readable over a bright image
            text = self.canvas.create_text(10, height - 8, text=self.caption, anchor="sw", fill="#e8e8e8")
            x0, y0, x1, y1 = self.canvas.bbox(text)
            band = self.canvas.create_rectangle(x0 - 4, y0 - 2, x1 + 4, y1 + 2, fill=BACKGROUND, outline="")
            self.canvas.tag_lower(band, text)

    def _draw_image(self, width: int, height: int) -> None:
        scale = self._fit(self.image.width, self.image.height) * self.zoom
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
        self._photo = ImageTk.PhotoImage(shown, master=self.canvas)  # this window's Tk, not the first one made
        self.canvas.create_image(round(visible[0]), round(visible[1]), image=self._photo, anchor="nw")
