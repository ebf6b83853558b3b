"""Opening the storage a worker's environment asks for: R2 when configured, else local.

Kept apart from ``config``, which only reads the environment, so that ``r2`` can use
``config.R2Config`` without an import loop. aioboto3 is imported only when R2 is opened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from .base import Storage
from .config import LocalConfig, R2Config
from .local import LocalStorage


@asynccontextmanager
async def storage_from_env(env: Mapping[str, str]) -> AsyncIterator[Storage]:
    """Yield R2 storage when R2 is configured, local storage otherwise; close it after."""
    config = R2Config.from_env(env)
    if config is None:
        local = LocalConfig.from_env(env)
        yield LocalStorage(local.root, public_base_url=local.public_base_url)
        return
    from .r2 import R2Storage

    async with R2Storage.open(config) as storage:
        yield storage
