"""Certificates' PDFs in the object store (the chassis' S3 bucket), one object per id."""

from __future__ import annotations

import logging
import uuid

from coursemesh.chassis.objects import ObjectStoreError, S3Bucket
from coursemesh.learning.app.ports import CertificateFileError
from coursemesh.learning.domain.certificate import object_key

PDF = "application/pdf"

log = logging.getLogger(__name__)


class S3CertificateFiles:
    """:class:`~coursemesh.learning.app.ports.CertificateFiles` on an S3 bucket."""

    def __init__(self, bucket: S3Bucket) -> None:
        self.bucket = bucket

    async def ensure_bucket(self) -> None:
        """Create the bucket when missing (local stacks); a store that cannot be reached now
        is logged, not fatal: the player does not need it, and a PDF not stored at completion
        is stored by its first download."""
        try:
            await self.bucket.ensure_bucket()
        except ObjectStoreError:
            log.warning("certificate bucket %s not reachable", self.bucket.bucket, exc_info=True)

    async def put(self, certificate_id: uuid.UUID, pdf: bytes) -> None:
        try:
            await self.bucket.put(object_key(certificate_id), pdf, PDF)
        except ObjectStoreError as exc:
            raise CertificateFileError(str(exc)) from exc

    async def get(self, certificate_id: uuid.UUID) -> bytes:
        try:
            return await self.bucket.get(object_key(certificate_id))
        except ObjectStoreError as exc:
            raise CertificateFileError(str(exc)) from exc
