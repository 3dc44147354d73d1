"""Audio objects in S3 (SeaweedFS locally, Cloudflare R2 in production) through boto3.

boto3 is synchronous: every call runs in a worker thread. Uploads send ``Content-MD5`` (our own
MD5 of the body), so the store rejects a corrupted upload; we never read the ETag as a checksum.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from coursemesh.customgen.app.ports import StorageError


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

    async def put(self, key: str, body: bytes, content_type: str, md5_hex: str) -> None:
        content_md5 = base64.b64encode(bytes.fromhex(md5_hex)).decode()
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
        # Deleting a missing key succeeds in S3, so a repeated delete step is harmless.
        await self._call(lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def public_url(self, key: str) -> str | None:
        return f"{self.public_base_url}/{key}" if self.public_base_url else None

    async def download_url(self, key: str) -> str:
        public = self.public_url(key)
        if public:
            return public
        url: str = await self._call(
            lambda: self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=self.presign_ttl_seconds,
            )
        )
        return url

    async def _call(self, fn: Any) -> Any:
        try:
            return await asyncio.to_thread(fn)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"S3 call failed: {exc}") from exc
