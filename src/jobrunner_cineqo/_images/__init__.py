"""`image.generate`: the fal.ai client (`fal`), fetching and checking the images (`fetch`),
the payload (`payload`) and the handler (`handler`)."""

from .handler import JOB_TYPE, register
from .payload import ImagePayload, ImageSize, KeyPrefix, OutputFormat

__all__ = ("JOB_TYPE", "ImagePayload", "ImageSize", "KeyPrefix", "OutputFormat", "register")
