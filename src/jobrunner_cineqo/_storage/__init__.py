"""Where Cineqo keeps novels and images: a local directory or a Cloudflare R2 bucket.

Handlers depend only on the ``Storage`` protocol and get an implementation from
``storage_from_env``. aioboto3 is imported only when R2 storage is opened.
"""

from .base import Storage, StoredObject
from .config import LocalConfig, R2Config, data_dir
from .errors import ObjectNotFound, StorageConfigError, StorageError, StorageKeyError
from .keys import KeySource, LocalSource, resolve_source, safe_key
from .local import LocalStorage
from .opening import storage_from_env
from .r2 import R2Storage, build_botocore_config
from .traced import TracedStorage

__all__ = (
    "KeySource",
    "LocalConfig",
    "LocalSource",
    "LocalStorage",
    "ObjectNotFound",
    "R2Config",
    "R2Storage",
    "Storage",
    "StorageConfigError",
    "StorageError",
    "StorageKeyError",
    "StoredObject",
    "TracedStorage",
    "build_botocore_config",
    "data_dir",
    "resolve_source",
    "safe_key",
    "storage_from_env",
)
