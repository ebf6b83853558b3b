"""`image.generate`: the fal.ai client (`fal`), fetching and checking the images (`fetch`),
the payload (`payload`) and the handler (`handler`)."""

from .handler import JOB_TYPE, register
from .payload import ImagePayload

__all__ = ("JOB_TYPE", "ImagePayload", "register")
