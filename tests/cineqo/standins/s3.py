"""An S3-compatible server on 127.0.0.1 (moto's ThreadedMotoServer) for R2 storage tests.

``moto.mock_aws`` does not work with aiobotocore, so tests talk to a real HTTP server.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import attrs
import boto3
from moto.server import ThreadedMotoServer

FAKE_ACCESS_KEY_ID = "AKIAFAKEKEYID0000001"
FAKE_SECRET_ACCESS_KEY = "fake-secret-Zm9vYmFyYmF6cXV4"


@attrs.define
class MotoS3:
    """A running moto server; ``create_bucket`` makes a fresh bucket for one test."""

    endpoint_url: str

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"cineqo-{uuid.uuid4().hex[:16]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="auto",
            aws_access_key_id=FAKE_ACCESS_KEY_ID,
            aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        )
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "auto"})
        client.close()
        return name

    def r2_env(
        self, bucket: str, *, public_url: str = "https://media.example.test/"
    ) -> dict[str, str]:
        """Environment variables that point R2 storage at this server and ``bucket``."""
        return {
            "R2_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
            "R2_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
            "R2_BUCKET_NAME": bucket,
            "R2_PUBLIC_URL": public_url,
            "R2_ENDPOINT_URL": self.endpoint_url,
        }


@contextmanager
def moto_s3() -> Iterator[MotoS3]:
    """Run moto on a random loopback port until the block ends."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield MotoS3(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()
