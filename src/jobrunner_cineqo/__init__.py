"""Cineqo's jobs for jobrunner: novels into chapters, casts and portraits.

Job types (see docs/cineqo.md): `novel.split`, `character.extract`, `image.generate` and the
pipeline `novel.process`, one package each (`_split`, `_cast`, `_images`, `_pipeline`), with
what they share beside them: a novel's text (`_novel`), storage (`_storage`), settings and
resources. Each package registers its handler on the plugin through an explicit `register`;
importing a module registers nothing. Importing this package stays light: the OpenAI, fal and
S3 clients are imported only when a worker opens the resources that need them.

The job types that call paid APIs declare cluster-wide limits as defaults, read here from the
process environment (CINEQO_IMAGE_*, CINEQO_EXTRACT_*: see `_settings`).
"""

import os

import jobrunner

from . import _cast, _images, _pipeline, _resources, _settings, _split, _views

plugin = jobrunner.Plugin("cineqo")
_limits = _settings.registration_limits(os.environ)
_resources.register(plugin)
_split.register(plugin)
_cast.register(plugin, _limits.extract)
_images.register(plugin, _limits.image)
_pipeline.register(plugin)
_views.register(plugin)  # the dashboard's views of these jobs

__all__ = ("plugin",)
