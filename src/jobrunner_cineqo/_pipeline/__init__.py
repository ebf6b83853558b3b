"""`novel.process`: the pipeline of the other three jobs, as child jobs."""

from .handler import JOB_TYPE, register

__all__ = ("JOB_TYPE", "register")
