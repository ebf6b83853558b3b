"""`novel.split`: its payload (`payload`) and its handler (`handler`)."""

from .handler import JOB_TYPE, register
from .payload import SplitPayload

__all__ = ("JOB_TYPE", "SplitPayload", "register")
