"""One bucket of an S3-compatible object store (SeaweedFS locally, Cloudflare R2 or any S3 in
production) through boto3, for services that keep files.

boto3 is synchronous: every call runs in a worker thread. Uploads send ``Content-MD5`` (our own
MD5 of the body) so the store rejects a corrupted upload; an ETag is never read as a checksum.
Every failure of the store, including a missing object, surfaces as :class:`ObjectStoreError`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

T = TypeVar("T")


class ObjectStoreError(Exception):
    """The store could not do what was asked (unreachable, refused, or no such object)."""


class S3Bucket:
    def __init__(
        self,
        *,
        endpoint: str | None,
        access_key: str | None,
        secret_key: str | None,
        bucket: str,
        region: str = "us-east-1",
    ) -> None:
        self.bucket = bucket
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=Config(
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            ),
        )

    async def ensure_bucket(self) -> None:
        def run() -> None:
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError:
                self.client.create_bucket(Bucket=self.bucket)

        await self._call(run)

    async def put(
        self, key: str, body: bytes, content_type: str, md5_hex: str | None = None
    ) -> None:
        """Store ``body`` under ``key``; ``md5_hex``: its MD5 when the caller has it already."""
        digest = bytes.fromhex(md5_hex) if md5_hex is not None else hashlib.md5(body).digest()
        content_md5 = base64.b64encode(digest).decode()
        await self._call(
            lambda: self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                ContentMD5=content_md5,
            )
        )

    async def delete(self, key: str) -> None:
        # Deleting a missing key succeeds in S3, so a repeated delete is harmless.
        await self._call(lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    async def presigned_get_url(self, key: str, expires_in: int) -> str:
        """A URL that downloads the object without credentials for ``expires_in`` seconds."""
        url: str = await self._call(
            lambda: self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
            )
        )
        return url

    async def get(self, key: str) -> bytes:
        def run() -> bytes:
            data: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            return data

        return await self._call(run)

    async def _call(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(fn)
        except (BotoCoreError, ClientError) as exc:
            raise ObjectStoreError(f"S3 call failed: {exc}") from exc
