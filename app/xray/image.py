"""The `XRay` value: what every reader returns and every consumer takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pydicom is imported only when a DICOM file is read
    from pydicom.dataset import Dataset


@dataclass(frozen=True, eq=False)
class XRay:
    """A radiograph as grayscale pixels in [0, 1], bone bright, plus where it came from.

    `pixels` is float32, shape (height, width). `metadata` holds non-identifying facts
    about the source (format, bit depth, original size); `notes` says what the reader
    had to do that a user should know (e.g. "first frame of 3 used").
    """

    pixels: np.ndarray
    source_name: str
    file_format: str
    original_size: tuple[int, int]  # (width, height) as stored in the file
    metadata: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    colourfulness: float = 0.0  # of the source before conversion to gray; photographs score high
    # sha256 of the file's bytes as the reader read them ("" for an image not read from a file):
    # the history and reports name exactly the file that was diagnosed.
    file_sha256: str = ""
    # A DICOM source's header without its pixel data so a result can go back
    # to the same patient and study. It holds identifiers: never log, store or export it.
    dicom_header: Dataset | None = field(default=None, repr=False)

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    def as_uint8(self) -> np.ndarray:
        """Pixels as 8-bit grayscale, for display and reports."""
        return np.clip(np.rint(self.pixels * 255.0), 0, 255).astype(np.uint8)
