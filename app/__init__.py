"""bonefrac: fracture detection decision support for elbow, hand and shoulder X-rays."""

__version__ = "0.1.0"
