"""Cineqo's jobs for jobrunner: novels into chapters, casts and portraits.

Job types (see docs/cineqo.md): `novel.split`, `character.extract`, `image.generate` and the
pipeline `novel.process`. Importing this package stays light: the OpenAI, fal and S3 clients
are imported only when a worker opens the resources that need them.
"""

import jobrunner

plugin = jobrunner.Plugin("cineqo")

# Registering handlers on `plugin` is what these imports are for.
from . import (  # noqa: E402, F401
    _extract_job,
    _image_job,
    _pipeline,
    _resources,
    _split_job,
)

_resources.register(plugin)

__all__ = ("plugin",)
