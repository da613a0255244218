"""Errors a user can cause. Each message is written for the person who caused it."""

from __future__ import annotations


class BoneFracError(Exception):
    """Base of every error the product reports to a user in one line."""


class XRayReadError(BoneFracError):
    """A file could not be read as an X-ray image."""


class ModelFilesError(BoneFracError):
    """The model files in `models/` are missing, damaged or do not match the manifest."""


class ReportWriteError(BoneFracError):
    """A report could not be written where the user asked."""
