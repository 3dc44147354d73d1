"""In-memory fakes of custom-gen's ports: no database, no bus, no network."""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import msgspec

from coursemesh.contracts import Envelope, Event, envelope
from coursemesh.customgen.app.ports import (
    CourseDocument,
    DownloadLink,
    EncodedAudio,
    JobProgress,
    NewCourse,
    NewRegenRequest,
    Pcm,
    RegenRequestTaken,
    ScriptRequest,
    SpeechError,
)
from coursemesh.customgen.app.views import (
    CourseSummary,
    PurchaseView,
    RegenRequestView,
    SyncedCourse,
)
from coursemesh.customgen.domain.course import (
    Checksummed,
    JobKind,
    SessionScript,
    StoredCourse,
    calculate_checksum,
)
from coursemesh.customgen.domain.intake import Voice
from coursemesh.customgen.domain.jobs import Job
from coursemesh.customgen.domain.purchase import Purchase
from coursemesh.customgen.domain.regen import RegenStatus
from coursemesh.customgen.domain.template_scripts import write_template_scripts

NOW = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


@dataclass
class FakeJob:
    id: uuid.UUID
    custom_course_id: uuid.UUID
    kind: JobKind
    regen_request_id: uuid.UUID | None
    step: str
    status: str = "pending"
    attempts: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    last_error: str | None = None
    failed_step: str | None = None
    delay_seconds: float = 0.0


@dataclass
class State:
    """Everything the fakes store."""

    purchases: dict[uuid.UUID, Purchase] = field(default_factory=dict)
    courses: dict[uuid.UUID, StoredCourse] = field(default_factory=dict)
    purchase_of_course: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    jobs: dict[uuid.UUID, FakeJob] = field(default_factory=dict)
    regen_requests: dict[uuid.UUID, RegenRequestView] = field(default_factory=dict)
    staff: set[tuple[uuid.UUID, str]] = field(default_factory=set)
    events: list[Envelope[Event]] = field(default_factory=list)


class _Transaction:
    """Stages events and commit callbacks; the store applies or drops them."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.staged: list[Envelope[Event]] = []
        self.callbacks: list[Callable[[], Awaitable[None] | None]] = []

    def publish(
        self, payload: Event, *, aggregate_id: str | uuid.UUID, aggregate_version: int
    ) -> Envelope[Event]:
        env = envelope(payload, aggregate_id=aggregate_id, aggregate_version=aggregate_version)
        self.staged.append(env)
        return env

    def after_commit(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        self.callbacks.append(callback)


class FakeCourseWriter(_Transaction):
    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool:
        return (organization_id, user_id) in self.state.staff

    async def lock_purchase(self, purchase_id: uuid.UUID) -> Purchase | None:
        return self.state.purchases.get(purchase_id)

    async def add_course(self, course: NewCourse) -> None:
        self.state.courses[course.id] = StoredCourse(
            id=course.id,
            user_id=course.user_id,
            organization_id=course.organization_id,
            course_code=course.course_code,
            status="generating",
            data=json.loads(course.data.text),
            checksum=course.data.checksum,
            file_size_bytes=course.data.size_bytes,
            version=1,
        )
        self.state.purchase_of_course[course.id] = course.purchase_id

    async def mark_purchase_submitted(self, purchase_id: uuid.UUID, course_id: uuid.UUID) -> None:
        purchase = self.state.purchases[purchase_id]
        self.state.purchases[purchase_id] = replace(
            purchase, status="submitted", custom_course_id=course_id
        )

    async def add_job(
        self,
        course_id: uuid.UUID,
        kind: JobKind,
        step: str,
        regen_request_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        job = FakeJob(uuid.uuid4(), course_id, kind, regen_request_id, step)
        self.state.jobs[job.id] = job
        return job.id

    async def lock_buyer(self, user_id: str) -> None:
        pass

    async def course_of_buyer(self, user_id: str, course_id: uuid.UUID) -> StoredCourse | None:
        course = self.state.courses.get(course_id)
        return course if course is not None and course.user_id == user_id else None

    async def regen_requests_last_24h(self, user_id: str) -> int:
        return sum(1 for r in self.state.regen_requests.values() if r.user_id == user_id)

    async def add_regen_request(self, request: NewRegenRequest) -> RegenRequestView:
        for other in self.state.regen_requests.values():
            if other.audio_id == request.audio_id and other.status in ("open", "approved"):
                raise RegenRequestTaken
        view = RegenRequestView(
            id=request.id,
            custom_course_id=request.custom_course_id,
            user_id=request.user_id,
            organization_id=request.organization_id,
            audio_id=request.audio_id,
            reason=request.reason,
            status="open",
            decided_by=None,
            decision_note=None,
            decided_at=None,
            completed_at=None,
            created_at=NOW,
        )
        self.state.regen_requests[request.id] = view
        return view

    async def lock_regen_request(
        self, organization_id: uuid.UUID, request_id: uuid.UUID
    ) -> RegenRequestView | None:
        request = self.state.regen_requests.get(request_id)
        if request is None or request.organization_id != organization_id:
            return None
        return request

    async def record_decision(
        self, request_id: uuid.UUID, status: RegenStatus, decided_by: str, note: str | None
    ) -> RegenRequestView:
        decided = msgspec.structs.replace(
            self.state.regen_requests[request_id],
            status=status,
            decided_by=decided_by,
            decision_note=note,
            decided_at=NOW,
        )
        self.state.regen_requests[request_id] = decided
        return decided

    async def bump_course_version(self, course_id: uuid.UUID) -> int:
        course = self.state.courses[course_id]
        self.state.courses[course_id] = replace(course, version=course.version + 1)
        return course.version + 1


def summary(state: State, course: StoredCourse) -> CourseSummary:
    return CourseSummary(
        id=course.id,
        user_id=course.user_id,
        organization_id=course.organization_id,
        purchase_id=state.purchase_of_course.get(course.id, uuid.uuid4()),
        course_code=course.course_code,
        title=course.data.get("metadata", {}).get("title", ""),
        description=course.data.get("metadata", {}).get("description", ""),
        status=course.status,
        checksum=course.checksum,
        file_size_bytes=course.file_size_bytes,
        created_at=NOW,
        updated_at=NOW,
    )


class FakeCourseReader:
    def __init__(self, state: State) -> None:
        self.state = state

    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool:
        return (organization_id, user_id) in self.state.staff

    async def purchases(self, user_id: str) -> list[PurchaseView]:
        return [
            PurchaseView(
                purchase_id=p.id,
                organization_id=p.organization_id,
                offer_id=uuid.uuid4(),
                course_code=p.course_code,
                title=p.offer_title,
                status=p.status,
                custom_course_id=p.custom_course_id,
                purchased_at=NOW,
            )
            for p in self.state.purchases.values()
            if p.user_id == user_id
        ]

    async def courses_of_buyer(self, user_id: str) -> list[CourseSummary]:
        return [summary(self.state, c) for c in self.state.courses.values() if c.user_id == user_id]

    async def courses_of_organization(self, organization_id: uuid.UUID) -> list[CourseSummary]:
        return [
            summary(self.state, c)
            for c in self.state.courses.values()
            if c.organization_id == organization_id
        ]

    async def course_document(self, user_id: str, course_id: uuid.UUID) -> CourseDocument | None:
        course = self.state.courses.get(course_id)
        if course is None or course.user_id != user_id:
            return None
        job = next(
            (
                JobProgress(j.step, j.status, j.attempts, j.failed_step, j.last_error)
                for j in self.state.jobs.values()
                if j.custom_course_id == course_id and j.kind == "generate"
            ),
            None,
        )
        text = calculate_checksum(course.data).text
        return CourseDocument(summary=summary(self.state, course), data=text, job=job)

    async def owns_course(self, user_id: str, course_id: uuid.UUID) -> bool:
        return await self.course_document(user_id, course_id) is not None

    async def regen_requests_of_course(self, course_id: uuid.UUID) -> list[RegenRequestView]:
        return [r for r in self.state.regen_requests.values() if r.custom_course_id == course_id]

    async def regen_requests_of_organization(
        self, organization_id: uuid.UUID, status: RegenStatus | None
    ) -> list[RegenRequestView]:
        return [
            r
            for r in self.state.regen_requests.values()
            if r.organization_id == organization_id and (status is None or r.status == status)
        ]


class FakeCourseStore:
    """A transaction works on a copy of the state, kept only if the block ends normally."""

    def __init__(self, state: State | None = None) -> None:
        self.state = state or State()
        self.reads = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeCourseWriter]:
        writer = FakeCourseWriter(copy.deepcopy(self.state))
        yield writer
        writer.state.events.extend(writer.staged)
        self.state = writer.state
        for callback in writer.callbacks:
            result = callback()
            if result is not None:
                await result

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[FakeCourseReader]:
        self.reads += 1
        yield FakeCourseReader(self.state)


class FakeHandshakeStore:
    """Serves the ready courses of ``courses``; counts its statements."""

    def __init__(self, courses: Sequence[StoredCourse]) -> None:
        self.courses = list(courses)
        self.statements = 0

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[FakeHandshakeStore]:
        yield self

    async def ready_checksums(self, user_id: str) -> tuple[Sequence[uuid.UUID], Sequence[str]]:
        self.statements += 1
        mine = [c for c in self.courses if c.user_id == user_id and c.status == "ready"]
        return [c.id for c in mine], [c.checksum for c in mine]

    async def synced_courses(self, course_ids: Sequence[uuid.UUID]) -> list[SyncedCourse]:
        self.statements += 1
        return [
            SyncedCourse(
                id=c.id,
                course_code=c.course_code,
                title="",
                description="",
                checksum=c.checksum,
                file_size_bytes=c.file_size_bytes,
                updated_at=NOW,
                data=msgspec.Raw(calculate_checksum(c.data).text.encode()),
            )
            for c in self.courses
            if c.id in course_ids
        ]


class FakeJobWriter(_Transaction):
    def __init__(self, state: State, job: FakeJob) -> None:
        super().__init__(state)
        self.fake_job = job
        self.job = Job(
            id=job.id,
            custom_course_id=job.custom_course_id,
            kind=job.kind,
            regen_request_id=job.regen_request_id,
            step=job.step,
            attempts=job.attempts,
            state=copy.deepcopy(job.state),
        )

    @asynccontextmanager
    async def attempt(self) -> AsyncIterator[None]:
        saved, staged = copy.deepcopy(self.state), list(self.staged)
        try:
            yield
        except BaseException:
            self.state, self.staged = saved, staged
            self.fake_job = saved.jobs[self.job.id]
            raise

    async def lock_course_data(self, course_id: uuid.UUID) -> dict[str, Any] | None:
        course = self.state.courses.get(course_id)
        return copy.deepcopy(course.data) if course is not None else None

    async def store_data(self, course_id: uuid.UUID, stored: Checksummed) -> None:
        course = self.state.courses[course_id]
        self.state.courses[course_id] = replace(
            course,
            data=json.loads(stored.text),
            checksum=stored.checksum,
            file_size_bytes=stored.size_bytes,
        )

    async def course(self, course_id: uuid.UUID) -> StoredCourse:
        course = self.state.courses[course_id]
        return replace(course, data=copy.deepcopy(course.data))

    async def mark_course_ready(self, course_id: uuid.UUID, version: int) -> None:
        course = self.state.courses[course_id]
        self.state.courses[course_id] = replace(course, status="ready", version=version)

    async def set_course_version(self, course_id: uuid.UUID, version: int) -> None:
        course = self.state.courses[course_id]
        self.state.courses[course_id] = replace(course, version=version)

    async def regen_request(self, request_id: uuid.UUID) -> RegenRequestView:
        return self.state.regen_requests[request_id]

    def _set_request(self, request_id: uuid.UUID, status: str) -> None:
        self.state.regen_requests[request_id] = msgspec.structs.replace(
            self.state.regen_requests[request_id], status=status, completed_at=NOW
        )

    async def complete_regen_request(self, request_id: uuid.UUID) -> None:
        self._set_request(request_id, "completed")

    async def mark_regen_request_failed(self, request_id: uuid.UUID) -> None:
        self._set_request(request_id, "failed")

    @property
    def _job(self) -> FakeJob:
        return self.state.jobs[self.job.id]

    async def advance(self, step: str, *, state: dict[str, Any] | None = None) -> None:
        job = self._job
        job.step, job.attempts, job.last_error = step, 0, None
        if state is not None:
            job.state = copy.deepcopy(state)

    async def finish(self) -> None:
        self._job.status, self._job.last_error = "done", None

    async def retry_later(self, attempts: int, error: str, delay_seconds: float) -> None:
        job = self._job
        job.attempts, job.last_error, job.delay_seconds = attempts, error, delay_seconds

    async def fail(self, attempts: int, error: str) -> None:
        job = self._job
        job.status, job.attempts, job.last_error = "failed", attempts, error
        job.failed_step = job.step

    async def mark_course_failed(self, course_id: uuid.UUID) -> None:
        course = self.state.courses[course_id]
        self.state.courses[course_id] = replace(course, status="failed")


class FakeJobStore:
    """Claims the first pending job (a retry is due at once); shares ``State`` with a
    :class:`FakeCourseStore` through ``owner``."""

    def __init__(self, owner: FakeCourseStore) -> None:
        self.owner = owner

    @asynccontextmanager
    async def claim(self) -> AsyncIterator[FakeJobWriter | None]:
        pending = [j for j in self.owner.state.jobs.values() if j.status == "pending"]
        if not pending:
            yield None
            return
        state = copy.deepcopy(self.owner.state)
        writer = FakeJobWriter(state, state.jobs[pending[0].id])
        yield writer
        writer.state.events.extend(writer.staged)
        self.owner.state = writer.state

    async def seconds_until_due(self) -> float | None:
        return None


# --- providers -------------------------------------------------------------------------------


class FakeScriptWriter:
    name = "template"

    def __init__(self) -> None:
        self.requests: list[ScriptRequest] = []

    async def write(self, request: ScriptRequest) -> list[SessionScript]:
        self.requests.append(request)
        return write_template_scripts(request.intake)


class FakeSpeech:
    """Samples derived from the text; fails its first ``failures`` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[tuple[str, Voice]] = []

    async def synthesize(self, text: str, voice: Voice) -> Pcm:
        self.calls.append((text, voice))
        if len(self.calls) <= self.failures:
            raise SpeechError("TTS provider unavailable")
        # Distinct texts give distinct samples (content-addressed keys must not collide).
        return Pcm(hashlib.sha256(text.encode()).digest() * 6, 1000)


class FakeEncoder:
    async def encode(self, pcm: Pcm) -> EncodedAudio:
        return EncodedAudio(b"MP3" + pcm.samples, pcm.duration_ms, "audio/mpeg", "mp3")


class FakeAudioStream:
    def __init__(self, body: bytes) -> None:
        self.length = len(body)
        self._body = body

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self._body


class FakeAudioStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.deleted: list[str] = []
        self.uploads = 0

    async def put(self, key: str, body: bytes, content_type: str, md5_hex: str) -> None:
        self.uploads += 1
        self.objects[key] = body

    async def stored_size(self, key: str) -> int | None:
        body = self.objects.get(key)
        return None if body is None else len(body)

    async def open(
        self, key: str, first: int | None = None, last: int | None = None
    ) -> FakeAudioStream:
        body = self.objects[key]
        start = first or 0
        return FakeAudioStream(body[start : len(body) if last is None else last + 1])

    async def download_link(self, key: str) -> DownloadLink:
        return DownloadLink(await self.download_url(key), datetime(2030, 1, 1, tzinfo=UTC))

    async def delete(self, key: str) -> None:
        self.deleted.append(key)
        self.objects.pop(key, None)

    def public_url(self, key: str) -> str | None:
        return None

    async def download_url(self, key: str) -> str:
        return f"https://signed.example/{key}"
