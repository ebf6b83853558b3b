"""The one place jobrunner-cineqo's version is written (its build reads it too)."""

__version__ = "0.1.0"
