"""spamdrill: failure drills for spam-filtered mail delivery, on the real programs."""

__version__ = "0.1.0"
