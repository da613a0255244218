"""Where the shipped models and assets are: beside the code in a source checkout (models/,
assets/), inside the installed package after `pip install .` (app/shipped_models/,
app/shipped_assets/, mapped there by pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def shipped_models_dir() -> Path:
    in_checkout = _CHECKOUT / "models"
    return in_checkout if (in_checkout / "manifest.json").is_file() else _PACKAGE / "shipped_models"


def shipped_assets_dir() -> Path:
    in_checkout = _CHECKOUT / "assets"
    return in_checkout if (in_checkout / "fonts").is_dir() else _PACKAGE / "shipped_assets"
