"""Scenario modules: ``<library>_<scenario>.py`` files that define ``async def run``."""
