"""Cloudflare R2 (or any S3-compatible server) through aioboto3, one client per ``open``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from .base import StoredObject, join_public_url
from .errors import ObjectNotFound, StorageConfigError, StorageError
from .keys import safe_key

if TYPE_CHECKING:
    from aiobotocore.config import AioConfig

    from .config import R2Config

T = TypeVar("T")
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def build_botocore_config(*, retries: int = 3) -> AioConfig:
    """The client config R2 needs; ``retries`` counts attempts after the first.

    botocore >= 1.36 adds CRC checksums (aws-chunked trailers over https) to every upload
    unless told ``when_required``; R2 has rejected those with "Unauthorized" on PutObject.
    """
    from aiobotocore.config import AioConfig

    return AioConfig(
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": retries, "mode": "standard"},
    )


@attrs.define
class R2Storage:
    """Objects in one R2 bucket. Make it with ``async with R2Storage.open(config) as storage``."""

    config: R2Config
    client: Any = attrs.field(repr=False)  # the open aiobotocore S3 client

    @classmethod
    @asynccontextmanager
    async def open(
        cls, config: R2Config, *, retries: int = 3, session: Any = None
    ) -> AsyncIterator[R2Storage]:
        """Open one S3 client for the whole lifetime of the context and close it after."""
        import aioboto3

        session = session if session is not None else aioboto3.Session()
        async with AsyncExitStack() as stack:
            try:
                client = await stack.enter_async_context(
                    session.client(
                        "s3",
                        endpoint_url=config.endpoint_url,
                        region_name="auto",
                        aws_access_key_id=config.access_key_id,
                        aws_secret_access_key=config.secret_access_key,
                        config=build_botocore_config(retries=retries),
                    )
                )
            except ValueError as exc:
                message = config.redact(str(exc))
                raise StorageConfigError(f"cannot open R2 client: {message}") from None
            yield cls(config=config, client=client)

    async def put(
        self, key: str, data: bytes, *, content_type: str, cache_control: str | None = None
    ) -> StoredObject:
        """Upload ``data``; R2 has no object ACLs, so none is ever sent."""
        key = safe_key(key)
        params: dict[str, Any] = {
            "Bucket": self.config.bucket,
            "Key": key,
            "Body": bytes(data),
            "ContentType": content_type,
        }
        if cache_control is not None:
            params["CacheControl"] = cache_control
        await self._call("write", key, self.client.put_object(**params))
        return StoredObject(
            key=key, size=len(data), content_type=content_type, url=self.public_url(key)
        )

    async def get(self, key: str) -> bytes:
        key = safe_key(key)
        return await self._call("read", key, self._read(key))

    async def exists(self, key: str) -> bool:
        key = safe_key(key)
        try:
            head = self.client.head_object(Bucket=self.config.bucket, Key=key)
            await self._call("check", key, head)
        except ObjectNotFound:
            return False
        return True

    def public_url(self, key: str) -> str | None:
        return join_public_url(self.config.public_url, safe_key(key))

    def describe(self) -> str:
        return self.config.describe()

    async def _read(self, key: str) -> bytes:
        response = await self.client.get_object(Bucket=self.config.bucket, Key=key)
        async with response["Body"] as body:
            data: bytes = await body.read()  # aiobotocore is untyped
        return data

    async def _call(self, action: str, key: str, operation: Awaitable[T]) -> T:
        import aiohttp
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await operation
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in _NOT_FOUND_CODES:
                raise ObjectNotFound(key) from None
            reason = f"{code or 'error'}: {error.get('Message', '')}".rstrip(": ")
            raise self._error(action, key, reason) from exc
        except (BotoCoreError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise self._error(action, key, f"{type(exc).__name__}: {exc}") from exc

    def _error(self, action: str, key: str, reason: str) -> StorageError:
        message = f"R2 could not {action} {key!r} in bucket {self.config.bucket!r}: {reason}"
        return StorageError(self.config.redact(message))
