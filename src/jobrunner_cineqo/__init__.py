"""Cineqo jobs for jobrunner."""
