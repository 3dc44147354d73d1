"""Audio objects in S3 (SeaweedFS locally, Cloudflare R2 in production): a bucket of
``chassis.objects`` (boto3, uploads checked by ``Content-MD5``), with the public or presigned
download URL a client is given."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from coursemesh.chassis.objects import ObjectStoreError, ObjectStream, S3Bucket
from coursemesh.customgen.app.ports import DownloadLink, StorageError

T = TypeVar("T")


class S3AudioStore:
    def __init__(
        self,
        *,
        endpoint: str | None,
        access_key: str | None,
        secret_key: str | None,
        bucket: str,
        region: str = "us-east-1",
        public_base_url: str | None = None,
        presign_ttl_seconds: int = 3600,
    ) -> None:
        self.bucket = bucket
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.presign_ttl_seconds = presign_ttl_seconds
        self._objects = S3Bucket(
            endpoint=endpoint,
            access_key=access_key,
            secret_key=secret_key,
            bucket=bucket,
            region=region,
        )

    async def ensure_bucket(self) -> None:
        await _storage(self._objects.ensure_bucket())

    async def put(self, key: str, body: bytes, content_type: str, md5_hex: str) -> None:
        await _storage(self._objects.put(key, body, content_type, md5_hex))

    async def stored_size(self, key: str) -> int | None:
        info = await _storage(self._objects.head(key))
        return info.size if info else None

    async def open(
        self, key: str, first: int | None = None, last: int | None = None
    ) -> S3AudioStream:
        return S3AudioStream(await _storage(self._objects.open(key, first=first, last=last)))

    async def delete(self, key: str) -> None:
        await _storage(self._objects.delete(key))

    def public_url(self, key: str) -> str | None:
        return f"{self.public_base_url}/{key}" if self.public_base_url else None

    async def download_url(self, key: str) -> str:
        public = self.public_url(key)
        if public:
            return public
        return await _storage(self._objects.presigned_get_url(key, self.presign_ttl_seconds))

    async def download_link(self, key: str) -> DownloadLink:
        public = self.public_url(key)
        if public:
            return DownloadLink(public, None)
        # Taken before signing: the URL is valid at least until the moment stated.
        expires_at = datetime.now(UTC) + timedelta(seconds=self.presign_ttl_seconds)
        return DownloadLink(await self.download_url(key), expires_at.replace(microsecond=0))


class S3AudioStream:
    def __init__(self, stream: ObjectStream) -> None:
        self.length = stream.length
        self._stream = stream

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream.chunks():
                yield chunk
        except ObjectStoreError as exc:
            raise StorageError(str(exc)) from exc


async def _storage(call: Awaitable[T]) -> T:
    """The use cases' :class:`StorageError` for any failure of the store."""
    try:
        return await call
    except ObjectStoreError as exc:
        raise StorageError(str(exc)) from exc
