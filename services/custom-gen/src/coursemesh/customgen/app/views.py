"""What the use cases answer with (camelCase on the wire)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

CourseData = Annotated[
    msgspec.Raw,
    msgspec.Meta(
        description="The course data document (schema_version 1: metadata, scripts, workbooks, "
        "audio_files), as stored: canonical JSON whose MD5 is `checksum` and whose length in "
        "bytes is `fileSizeBytes`."
    ),
]


class PurchaseView(msgspec.Struct, rename="camel", kw_only=True):
    purchase_id: uuid.UUID
    organization_id: uuid.UUID
    offer_id: uuid.UUID
    course_code: str
    title: str
    status: str
    custom_course_id: uuid.UUID | None
    purchased_at: datetime


class Progress(msgspec.Struct, rename="camel", kw_only=True):
    """Where generation stands: the current step (and session), retries, the failed step."""

    step: str
    sessions_done: int
    sessions_total: int
    attempts: int
    failed_step: str | None
    last_error: str | None


class CourseSummary(msgspec.Struct, rename="camel", kw_only=True):
    id: uuid.UUID
    user_id: str
    organization_id: uuid.UUID
    purchase_id: uuid.UUID
    course_code: str
    title: str
    description: str
    status: str
    checksum: str
    file_size_bytes: int
    created_at: datetime
    updated_at: datetime


class CourseDetail(CourseSummary, kw_only=True):
    progress: Progress | None
    data: CourseData
    audio_urls: dict[str, str]
    """audio id -> a URL to fetch it now (public, or presigned with the configured TTL)."""


class SyncedCourse(msgspec.Struct, rename="camel", kw_only=True):
    id: uuid.UUID
    course_code: str
    title: str
    description: str
    checksum: str
    file_size_bytes: int
    updated_at: datetime
    data: CourseData
    """Passed through as stored: the canonical JSON the checksum was taken over."""


class HandshakeResult(msgspec.Struct, rename="camel", kw_only=True):
    changed: list[SyncedCourse]
    missing: list[SyncedCourse]
    removed: list[uuid.UUID]
    unchanged_count: int


class RegenRequestView(msgspec.Struct, rename="camel", kw_only=True):
    id: uuid.UUID
    custom_course_id: uuid.UUID
    user_id: str
    organization_id: uuid.UUID
    audio_id: uuid.UUID
    reason: str
    status: str
    decided_by: str | None
    decision_note: str | None
    decided_at: datetime | None
    completed_at: datetime | None
    created_at: datetime


class ManifestFileView(msgspec.Struct, rename="camel", kw_only=True):
    file_id: str
    """The audio entry's id."""
    session: int
    md5: str
    sha256: str | None
    """``null`` for a file stored before content addressing (verify it by ``md5``)."""
    size_bytes: int
    content_type: str
    path: str
    """Gateway path that streams the file (ranges, ``If-None-Match``) with the bearer token."""
    url: str
    """A direct URL: public, or presigned until ``urlExpiresAt``."""
    url_expires_at: datetime | None


class FileManifestView(msgspec.Struct, rename="camel", kw_only=True):
    custom_course_id: uuid.UUID
    checksum: str
    """The checksum of the course document these files belong to."""
    files: list[ManifestFileView]
