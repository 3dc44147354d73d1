"""One bucket of an S3-compatible object store (SeaweedFS locally, Cloudflare R2 or any S3 in
production) through boto3, for services that keep files.

boto3 is synchronous: every call runs in a worker thread. Uploads send ``Content-MD5`` (our own
MD5 of the body) so the store rejects a corrupted upload; an ETag is never read as a checksum.
Every failure of the store, including a missing object, surfaces as :class:`ObjectStoreError`;
only :meth:`S3Bucket.head` answers a missing object with ``None``.

Downloads are streamed: :meth:`S3Bucket.open` asks S3 itself for a byte range (``Range``) and
honours ``If-None-Match`` against the store's ETag, and hands the body over in chunks, so a
large object never sits in memory whole.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

T = TypeVar("T")


class ObjectStoreError(Exception):
    """The store could not do what was asked (unreachable, refused, or no such object)."""


#: What one read of a streamed body asks for.
CHUNK_BYTES = 64 * 1024

_MISSING = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What the store says about an object without reading it."""

    size: int
    content_type: str | None
    etag: str | None
    """The store's own ETag (quoted as S3 sends it); not a checksum of ours."""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ObjectStream:
    """An opened object (or the part of it asked for): ``status`` 200, 206 or 304 (then no
    body). Iterate :meth:`chunks` once; it closes the connection to the store when it ends."""

    status: int
    length: int
    """Bytes the body holds (the range's length for 206, 0 for 304)."""
    total_size: int | None
    """The whole object's size (from ``Content-Range`` for 206)."""
    content_range: str | None
    content_type: str | None
    etag: str | None
    _body: Any = None

    async def chunks(self, chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        body = self._body
        if body is None:
            return
        try:
            while True:
                chunk: bytes = await _guarded(lambda: body.read(chunk_bytes))
                if not chunk:
                    return
                yield chunk
        finally:
            # A client that stops reading must not keep a connection of the pool.
            await asyncio.to_thread(body.close)

    async def close(self) -> None:
        if self._body is not None:
            await asyncio.to_thread(self._body.close)


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

    async def head(self, key: str) -> ObjectInfo | None:
        """The object's size, type and ETag; ``None`` when there is no such object."""

        def run() -> ObjectInfo | None:
            try:
                answer = self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                    return None
                raise
            return ObjectInfo(
                size=int(answer["ContentLength"]),
                content_type=answer.get("ContentType"),
                etag=answer.get("ETag"),
                metadata=dict(answer.get("Metadata") or {}),
            )

        return await self._call(run)

    async def open(
        self,
        key: str,
        *,
        first: int | None = None,
        last: int | None = None,
        if_none_match: str | None = None,
    ) -> ObjectStream:
        """Stream the object, or bytes ``first``..``last`` of it (inclusive; ``last`` None: to
        the end) through S3's own ``Range``. ``if_none_match``: the store's ETag a client holds;
        when it still matches the answer is a 304 without body. A range past the end is an
        :class:`ObjectStoreError`: callers decide satisfiability from the size they know."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if first is not None:
            params["Range"] = f"bytes={first}-{'' if last is None else last}"
        if if_none_match is not None:
            params["IfNoneMatch"] = if_none_match

        def run() -> ObjectStream:
            try:
                answer = self.client.get_object(**params)
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) == "304":
                    return ObjectStream(304, 0, None, None, None, if_none_match)
                raise
            content_range = answer.get("ContentRange")
            total = int(answer["ContentLength"])
            if content_range and "/" in content_range:
                size = content_range.rsplit("/", 1)[1]
                total = int(size) if size.isdigit() else total
            return ObjectStream(
                status=206 if content_range else 200,
                length=int(answer["ContentLength"]),
                total_size=total,
                content_range=content_range,
                content_type=answer.get("ContentType"),
                etag=answer.get("ETag"),
                _body=answer["Body"],
            )

        return await self._call(run)

    async def get(self, key: str) -> bytes:
        def run() -> bytes:
            data: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            return data

        return await self._call(run)

    async def _call(self, fn: Callable[[], T]) -> T:
        return await _guarded(fn)


async def _guarded(fn: Callable[[], T]) -> T:
    """``fn`` in a worker thread, any failure of boto3 as :class:`ObjectStoreError`."""
    try:
        return await asyncio.to_thread(fn)
    except (BotoCoreError, ClientError) as exc:
        raise ObjectStoreError(f"S3 call failed: {exc}") from exc
