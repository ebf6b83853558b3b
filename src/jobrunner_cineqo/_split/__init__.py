"""`novel.split`: its payload (`payload`) and its handler (`handler`)."""

from .handler import JOB_TYPE, register
from .payload import SPLIT_KEYS, SplitRequest, parse_split

__all__ = ("JOB_TYPE", "SPLIT_KEYS", "SplitRequest", "parse_split", "register")
