"""Ports: what the use cases need from the outside world, as Protocols.

The adapters (``coursemesh.customgen.adapters``) implement them on PostgreSQL, S3 and the speech
and script providers; the unit tests implement them in memory.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import msgspec

from coursemesh.chassis.staff import StaffDirectory
from coursemesh.chassis.transaction import EventSink
from coursemesh.customgen.app.views import (
    CourseSummary,
    PurchaseView,
    RegenRequestView,
    SyncedCourse,
)
from coursemesh.customgen.domain.course import Checksummed, JobKind, SessionScript, StoredCourse
from coursemesh.customgen.domain.intake import Intake, Voice
from coursemesh.customgen.domain.jobs import Job
from coursemesh.customgen.domain.purchase import Purchase
from coursemesh.customgen.domain.regen import RegenStatus

# --- storage ---------------------------------------------------------------------------------


class RegenRequestTaken(Exception):
    """An open or approved request already holds the audio file (``add_regen_request``); the
    transaction goes on."""


@dataclass(frozen=True, slots=True)
class NewCourse:
    id: uuid.UUID
    user_id: str
    organization_id: uuid.UUID
    purchase_id: uuid.UUID
    course_code: str
    title: str
    description: str
    data: Checksummed


@dataclass(frozen=True, slots=True)
class NewRegenRequest:
    id: uuid.UUID
    custom_course_id: uuid.UUID
    user_id: str
    organization_id: uuid.UUID
    audio_id: uuid.UUID
    reason: str


@dataclass(frozen=True, slots=True)
class JobProgress:
    """The course's ``generate`` job as it stands."""

    step: str
    status: str
    attempts: int
    failed_step: str | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class CourseDocument:
    """A buyer's course with its stored document (text, as stored) and its generation job."""

    summary: CourseSummary
    data: str
    job: JobProgress | None


class CourseReader(StaffDirectory, Protocol):
    """Reads outside any transaction, statement by statement."""

    async def purchases(self, user_id: str) -> list[PurchaseView]:
        """The buyer's purchases, newest first."""
        ...

    async def courses_of_buyer(self, user_id: str) -> list[CourseSummary]:
        """Newest first."""
        ...

    async def courses_of_organization(self, organization_id: uuid.UUID) -> list[CourseSummary]:
        """Newest first."""
        ...

    async def course_document(self, user_id: str, course_id: uuid.UUID) -> CourseDocument | None:
        """The buyer's course; ``None`` when it does not exist or is someone else's."""
        ...

    async def owns_course(self, user_id: str, course_id: uuid.UUID) -> bool: ...

    async def regen_requests_of_course(self, course_id: uuid.UUID) -> list[RegenRequestView]:
        """Newest first."""
        ...

    async def regen_requests_of_organization(
        self, organization_id: uuid.UUID, status: RegenStatus | None
    ) -> list[RegenRequestView]:
        """Oldest first; only those in ``status`` when given."""
        ...


class CourseWriter(StaffDirectory, EventSink, Protocol):
    """One transaction: its reads, its writes and the events it publishes commit together.
    ``lock_*`` reads keep the row locked until the transaction ends."""

    def after_commit(self, callback: Callable[[], Awaitable[None] | None]) -> None: ...

    async def lock_purchase(self, purchase_id: uuid.UUID) -> Purchase | None: ...

    async def add_course(self, course: NewCourse) -> None:
        """A ``generating`` course at version 1."""
        ...

    async def mark_purchase_submitted(
        self, purchase_id: uuid.UUID, course_id: uuid.UUID
    ) -> None: ...

    async def add_job(
        self,
        course_id: uuid.UUID,
        kind: JobKind,
        step: str,
        regen_request_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """A ``pending`` job, due now."""
        ...

    async def lock_buyer(self, user_id: str) -> None:
        """Serialise one buyer's regen requests until the transaction ends."""
        ...

    async def course_of_buyer(self, user_id: str, course_id: uuid.UUID) -> StoredCourse | None: ...

    async def regen_requests_last_24h(self, user_id: str) -> int: ...

    async def add_regen_request(self, request: NewRegenRequest) -> RegenRequestView:
        """An ``open`` request; raises :class:`RegenRequestTaken` (the transaction goes on)."""
        ...

    async def lock_regen_request(
        self, organization_id: uuid.UUID, request_id: uuid.UUID
    ) -> RegenRequestView | None:
        """The organization's request; ``None`` for another organization's."""
        ...

    async def record_decision(
        self, request_id: uuid.UUID, status: RegenStatus, decided_by: str, note: str | None
    ) -> RegenRequestView: ...

    async def bump_course_version(self, course_id: uuid.UUID) -> int:
        """The course's event version, raised by one in one statement and returned: the
        ``aggregate_version`` of the course event this transaction publishes. The course row
        stays locked until the transaction ends, so a regeneration's swap, which reads the
        version under the same lock, numbers its events after it."""
        ...


class CourseStore(Protocol):
    """Where the courses, purchases and regen requests live."""

    def transaction(self) -> AbstractAsyncContextManager[CourseWriter]:
        """Committed (with its events) when the block ends normally, rolled back otherwise."""
        ...

    def reading(self) -> AbstractAsyncContextManager[CourseReader]:
        """Reads only: nothing is committed, nothing published."""
        ...


class HandshakeReader(Protocol):
    async def ready_checksums(self, user_id: str) -> tuple[Sequence[uuid.UUID], Sequence[str]]:
        """Ids and checksums of the buyer's ready courses, in the same order."""
        ...

    async def synced_courses(self, course_ids: Sequence[uuid.UUID]) -> list[SyncedCourse]:
        """Those courses with their data passed through as stored, in any order."""
        ...


class HandshakeStore(Protocol):
    def reading(self) -> AbstractAsyncContextManager[HandshakeReader]:
        """Reads on one connection, outside any transaction."""
        ...


class CourseDataWriter(Protocol):
    """The course data document inside a transaction."""

    async def lock_course_data(self, course_id: uuid.UUID) -> dict[str, Any] | None:
        """The document, its row locked until the transaction ends; ``None``: no such course."""
        ...

    async def store_data(self, course_id: uuid.UUID, stored: Checksummed) -> None:
        """Write data, checksum, size and ``updated_at`` in one statement."""
        ...


class JobWriter(CourseDataWriter, EventSink, Protocol):
    """The transaction holding one claimed job, for one step of it."""

    job: Job

    def attempt(self) -> AbstractAsyncContextManager[None]:
        """A step's writes: undone alone (the claim stays) when the block raises."""
        ...

    async def course(self, course_id: uuid.UUID) -> StoredCourse: ...

    async def mark_course_ready(self, course_id: uuid.UUID, version: int) -> None: ...

    async def set_course_version(self, course_id: uuid.UUID, version: int) -> None: ...

    async def regen_request(self, request_id: uuid.UUID) -> RegenRequestView: ...

    async def complete_regen_request(self, request_id: uuid.UUID) -> None: ...

    async def advance(self, step: str, *, state: dict[str, Any] | None = None) -> None:
        """The job moves to ``step`` with its attempts reset."""
        ...

    async def finish(self) -> None: ...

    async def retry_later(self, attempts: int, error: str, delay_seconds: float) -> None: ...

    async def fail(self, attempts: int, error: str) -> None:
        """The job is ``failed`` at its current step."""
        ...

    async def mark_course_failed(self, course_id: uuid.UUID) -> None: ...

    async def mark_regen_request_failed(self, request_id: uuid.UUID) -> None: ...


class JobStore(Protocol):
    def claim(self) -> AbstractAsyncContextManager[JobWriter | None]:
        """A transaction holding one due job (skipping those other workers hold); ``None``
        when nothing is due. Committed when the block ends normally."""
        ...

    async def seconds_until_due(self) -> float | None:
        """How long until the earliest pending job is due (negative: overdue); ``None``: none."""
        ...


# --- providers -------------------------------------------------------------------------------


class ScriptWriterError(Exception):
    """The script writer failed or answered something unusable (the step is retried)."""


class SpeechError(Exception):
    """Speech synthesis failed (the step is retried)."""


class StorageError(Exception):
    """Object storage failed (the step is retried)."""


class ScriptRequest(msgspec.Struct, frozen=True, kw_only=True):
    custom_course_id: str
    course_code: str
    intake: Intake


class ScriptWriter(Protocol):
    name: str

    async def write(self, request: ScriptRequest) -> list[SessionScript]: ...


class Pcm(msgspec.Struct, frozen=True):
    """Mono signed 16-bit little-endian samples."""

    samples: bytes
    sample_rate: int

    @property
    def sample_count(self) -> int:
        return len(self.samples) // 2

    @property
    def duration_ms(self) -> int:
        return round(self.sample_count * 1000 / self.sample_rate)


class SpeechSynthesizer(Protocol):
    async def synthesize(self, text: str, voice: Voice) -> Pcm: ...


class EncodedAudio(msgspec.Struct, frozen=True):
    body: bytes
    duration_ms: int
    content_type: str
    format: str


class AudioEncoder(Protocol):
    async def encode(self, pcm: Pcm) -> EncodedAudio: ...


@dataclass(frozen=True, slots=True)
class DownloadLink:
    url: str
    expires_at: datetime | None
    """When a presigned URL stops working; ``None`` for a permanent public URL."""


class AudioStream(Protocol):
    """An opened object: ``length`` bytes, read once through ``chunks``."""

    length: int

    def chunks(self) -> AsyncIterator[bytes]: ...


class AudioStore(Protocol):
    async def put(self, key: str, body: bytes, content_type: str, md5_hex: str) -> None: ...

    async def stored_size(self, key: str) -> int | None:
        """The size of the object under ``key``; ``None`` when there is none."""
        ...

    async def open(
        self, key: str, first: int | None = None, last: int | None = None
    ) -> AudioStream:
        """The object, or bytes ``first``..``last`` (inclusive) of it, streamed."""
        ...

    async def download_link(self, key: str) -> DownloadLink:
        """Like :meth:`download_url`, with the moment a presigned URL expires."""
        ...

    async def delete(self, key: str) -> None: ...

    def public_url(self, key: str) -> str | None:
        """The permanent URL of an object, when the bucket is public (stored in the data)."""
        ...

    async def download_url(self, key: str) -> str:
        """A URL a client can fetch now: the public one, or a presigned one."""
        ...
