"""Cineqo's jobs for jobrunner: novels into chapters, casts and portraits.

Job types (see docs/cineqo.md): `novel.split`, `character.extract`, `image.generate` and the
pipeline `novel.process`, one package each (`_split`, `_cast`, `_images`, `_pipeline`), with
what they share beside them: a novel's text (`_novel`), storage (`_storage`), settings and
resources. Each package registers its handler on the plugin through an explicit `register`;
importing a module registers nothing. Importing this package stays light: the OpenAI, fal and
S3 clients are imported only when a worker opens the resources that need them.
"""

import jobrunner

from . import _cast, _images, _pipeline, _resources, _split, _views

plugin = jobrunner.Plugin("cineqo")
_resources.register(plugin)
_split.register(plugin)
_cast.register(plugin)
_images.register(plugin)
_pipeline.register(plugin)
_views.register(plugin)  # the dashboard's views of these jobs

__all__ = ("plugin",)
