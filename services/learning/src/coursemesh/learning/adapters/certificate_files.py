"""Certificates' PDFs in the object store (the chassis' S3 bucket), one object per id."""

from __future__ import annotations

import uuid

from coursemesh.chassis.objects import ObjectStoreError, S3Bucket
from coursemesh.learning.app.ports import CertificateFileError
from coursemesh.learning.domain.certificate import object_key

PDF = "application/pdf"


class S3CertificateFiles:
    """:class:`~coursemesh.learning.app.ports.CertificateFiles` on an S3 bucket."""

    def __init__(self, bucket: S3Bucket) -> None:
        self.bucket = bucket

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
