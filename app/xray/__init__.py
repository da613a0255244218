"""Reading X-ray files into one normalised grayscale image (`XRay`)."""

from app.xray.image import XRay
from app.xray.preprocess import to_model_input
from app.xray.reader import read_xray

__all__ = ["XRay", "read_xray", "to_model_input"]
