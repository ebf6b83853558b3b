"""The one place the version is written (the build reads it too)."""

__version__ = "0.1.0"
