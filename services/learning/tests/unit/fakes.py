"""In-memory implementations of learning's ports: the use cases run on these in unit tests."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from coursemesh.contracts import Envelope, Event, envelope
from coursemesh.learning.app.ports import (
    CertificateFileError,
    EnrollmentRow,
    LibraryEntry,
    PlayerTransaction,
    SortKey,
    StaffTransaction,
)
from coursemesh.learning.domain.certificate import Certificate, Organization
from coursemesh.learning.domain.model import (
    Completion,
    Course,
    CourseDetails,
    Curriculum,
    Day,
    Enrollment,
    Entitlement,
    Item,
    Pause,
    PlayerSnapshot,
    Workout,
)


@dataclass
class State:
    """What the tables hold."""

    entitlements: dict[uuid.UUID, Entitlement] = field(default_factory=dict)
    courses: dict[uuid.UUID, Course] = field(default_factory=dict)
    workouts: dict[uuid.UUID, Workout] = field(default_factory=dict)
    enrollments: dict[uuid.UUID, Enrollment] = field(default_factory=dict)
    completions: dict[uuid.UUID, dict[uuid.UUID, Completion]] = field(default_factory=dict)
    history: list[tuple[uuid.UUID, Completion, int, str]] = field(default_factory=list)
    staff: set[tuple[uuid.UUID, str]] = field(default_factory=set)
    organizations: dict[uuid.UUID, Organization] = field(default_factory=dict)
    certificates: dict[uuid.UUID, Certificate] = field(default_factory=dict)
    pauses: dict[uuid.UUID, list[Pause]] = field(default_factory=dict)
    # offline sync: each buyer's counter, the (buyer, course) stamps, each item's last change
    sync_counters: dict[str, int] = field(default_factory=dict)
    sync_library: dict[tuple[str, uuid.UUID], int] = field(default_factory=dict)
    item_changes: dict[tuple[uuid.UUID, uuid.UUID], tuple[datetime, bool]] = field(
        default_factory=dict
    )


class FakeEvents:
    """An :class:`~coursemesh.chassis.transaction.EventSink` that stages what is published."""

    def __init__(self) -> None:
        self.staged: list[Envelope[Event]] = []

    def publish(
        self, payload: Event, *, aggregate_id: str | uuid.UUID, aggregate_version: int
    ) -> Envelope[Event]:
        env = envelope(payload, aggregate_id=aggregate_id, aggregate_version=aggregate_version)
        self.staged.append(env)
        return env


class FakeStore:
    """The player's and the staff's store on :class:`State`."""

    def __init__(self, state: State) -> None:
        self.state = state

    async def entitlement(self, user_id: str, course_id: uuid.UUID) -> Entitlement | None:
        return next(
            (
                e
                for e in self.state.entitlements.values()
                if e.user_id == user_id and e.course_id == course_id
            ),
            None,
        )

    async def course(self, course_id: uuid.UUID) -> Course | None:
        return self.state.courses.get(course_id)

    async def lock_enrollment(self, entitlement: Entitlement) -> Enrollment:
        return self.state.enrollments.setdefault(
            entitlement.entitlement_id,
            Enrollment(
                entitlement_id=entitlement.entitlement_id,
                start_date=None,
                completed_at=None,
                restart_count=0,
                last_activity_at=None,
                version=0,
            ),
        )

    async def save_enrollment(self, enrollment: Enrollment) -> None:
        self.state.enrollments[enrollment.entitlement_id] = enrollment

    async def completions(self, entitlement_id: uuid.UUID) -> list[Completion]:
        return list(self.state.completions.get(entitlement_id, {}).values())

    async def add_completion(self, entitlement_id: uuid.UUID, completion: Completion) -> bool:
        done = self.state.completions.setdefault(entitlement_id, {})
        if completion.item_id in done:
            return False
        done[completion.item_id] = completion
        return True

    async def remove_completion(self, entitlement_id: uuid.UUID, item_id: uuid.UUID) -> bool:
        return self.state.completions.get(entitlement_id, {}).pop(item_id, None) is not None

    async def archive_completions(
        self, entitlement_id: uuid.UUID, *, run: int, reason: str, now: datetime
    ) -> int:
        moved = self.state.completions.pop(entitlement_id, {})
        self.state.history.extend((entitlement_id, c, run, reason) for c in moved.values())
        return len(moved)

    async def workouts(self, workout_ids: set[uuid.UUID]) -> dict[uuid.UUID, Workout]:
        return {w: self.state.workouts[w] for w in workout_ids if w in self.state.workouts}

    async def organization(self, organization_id: uuid.UUID) -> Organization | None:
        return self.state.organizations.get(organization_id)

    async def issue_certificate(self, certificate: Certificate) -> Certificate:
        for kept in self.state.certificates.values():
            if (kept.entitlement_id, kept.run) == (certificate.entitlement_id, certificate.run):
                return kept
        self.state.certificates[certificate.certificate_id] = certificate
        return certificate

    async def latest_certificate(self, entitlement_id: uuid.UUID) -> Certificate | None:
        runs = [c for c in self.state.certificates.values() if c.entitlement_id == entitlement_id]
        return max(runs, key=lambda c: c.run, default=None)

    async def certificate(self, certificate_id: uuid.UUID) -> Certificate | None:
        return self.state.certificates.get(certificate_id)

    async def certificate_stored(self, certificate_id: uuid.UUID) -> None:
        kept = self.state.certificates[certificate_id]
        self.state.certificates[certificate_id] = msgspec.structs.replace(kept, stored=True)

    async def library(self, user_id: str) -> list[LibraryEntry]:
        entries = []
        for e in self.state.entitlements.values():
            if e.user_id != user_id or e.status != "active" or e.access_revoked_at is not None:
                continue
            course = self.state.courses.get(e.course_id)
            enrollment = self.state.enrollments.get(e.entitlement_id)
            entries.append(
                LibraryEntry(
                    entitlement=e,
                    course_name=None if course is None else course.details.name,
                    image_url=None if course is None else course.details.image_url,
                    duration_days=None if course is None else course.details.duration_days,
                    total_items=0 if course is None else sum(len(d.items) for d in course.days),
                    completed_items=len(self.state.completions.get(e.entitlement_id, {})),
                    start_date=None if enrollment is None else enrollment.start_date,
                    completed_at=None if enrollment is None else enrollment.completed_at,
                )
            )
        return entries

    async def entitlement_by_id(self, entitlement_id: uuid.UUID) -> Entitlement | None:
        return self.state.entitlements.get(entitlement_id)

    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool:
        return (organization_id, user_id) in self.state.staff

    async def pauses(self, entitlement_id: uuid.UUID) -> list[Pause]:
        return list(self.state.pauses.get(entitlement_id, []))

    async def add_pause(self, entitlement_id: uuid.UUID, pause: Pause) -> None:
        self.state.pauses.setdefault(entitlement_id, []).append(pause)

    async def close_pause(self, entitlement_id: uuid.UUID, pause: Pause) -> None:
        rows = self.state.pauses[entitlement_id]
        rows[:] = [pause if p.resumed_on is None else p for p in rows]

    async def touch_library(self, user_id: str, course_id: uuid.UUID) -> None:
        seq = self.state.sync_counters.get(user_id, 0) + 1
        self.state.sync_counters[user_id] = seq
        self.state.sync_library[(user_id, course_id)] = seq

    async def item_change(self, entitlement_id: uuid.UUID, item_id: uuid.UUID) -> datetime | None:
        found = self.state.item_changes.get((entitlement_id, item_id))
        return None if found is None else found[0]

    async def record_item_changes(
        self,
        entitlement_id: uuid.UUID,
        item_ids: Sequence[uuid.UUID],
        at: datetime,
        completed: bool,
    ) -> None:
        for item_id in item_ids:
            self.state.item_changes[(entitlement_id, item_id)] = (at, completed)

    async def course_organization(self, course_id: uuid.UUID) -> uuid.UUID | None:
        course = self.state.courses.get(course_id)
        return None if course is None else course.details.organization_id

    async def enrollment_rows(
        self,
        course_id: uuid.UUID,
        *,
        sort: SortKey,
        descending: bool,
        limit: int | None,
        offset: int,
    ) -> tuple[list[EnrollmentRow], int]:
        course = self.state.courses.get(course_id)
        total_items = 0 if course is None else sum(len(d.items) for d in course.days)
        rows = []
        for e in self.state.entitlements.values():
            if e.course_id != course_id or e.status != "active" or e.access_revoked_at:
                continue
            enrollment = self.state.enrollments.get(e.entitlement_id)
            rows.append(
                EnrollmentRow(
                    entitlement_id=e.entitlement_id,
                    user_id=e.user_id,
                    start_date=None if enrollment is None else enrollment.start_date,
                    completed_at=None if enrollment is None else enrollment.completed_at,
                    restart_count=0 if enrollment is None else enrollment.restart_count,
                    last_activity_at=None if enrollment is None else enrollment.last_activity_at,
                    completed_items=len(self.state.completions.get(e.entitlement_id, {})),
                    total_items=total_items,
                    completions=[
                        (str(c.item_id), c.completed_at)
                        for c in self.state.completions.get(e.entitlement_id, {}).values()
                    ],
                    pauses=list(self.state.pauses.get(e.entitlement_id, [])),
                )
            )
        key: dict[str, Any] = {
            "lastActivityAt": lambda r: r.last_activity_at,
            "startDate": lambda r: r.start_date,
            "completedCount": lambda r: r.completed_items,
            "userId": lambda r: r.user_id,
        }
        rows.sort(key=lambda r: (key[sort](r) is None, key[sort](r), r.entitlement_id))
        if descending:
            rows.reverse()
        page = rows[offset:] if limit is None else rows[offset : offset + limit]
        return page, len(rows)


class FakeReader:
    def __init__(self, state: State) -> None:
        self.state = state

    async def snapshot(self, user_id: str, course_id: uuid.UUID) -> PlayerSnapshot | None:
        entitlement = await FakeStore(self.state).entitlement(user_id, course_id)
        if entitlement is None:
            return None
        course = self.state.courses.get(course_id)
        done = self.state.completions.get(entitlement.entitlement_id, {})
        curriculum = None
        if course is not None:
            used = {i.workout_id for d in course.days for i in d.items}
            curriculum = Curriculum(
                days=course.days,
                workouts={w: self.state.workouts[w] for w in used if w in self.state.workouts},
            )
        return PlayerSnapshot(
            entitlement=entitlement,
            course=None if course is None else course.details,
            curriculum=curriculum,
            enrollment=self.state.enrollments.get(entitlement.entitlement_id),
            completed_item_ids=sorted(str(i) for i in done),
            completed_workout_ids=sorted({str(c.workout_id) for c in done.values()}),
            certificate_id=_run_certificate(self.state, entitlement.entitlement_id),
            pauses=list(self.state.pauses.get(entitlement.entitlement_id, [])),
            completed_times=[done[i].completed_at for i in sorted(done, key=str)],
        )


def _run_certificate(state: State, entitlement_id: uuid.UUID) -> uuid.UUID | None:
    enrollment = state.enrollments.get(entitlement_id)
    if enrollment is None or enrollment.completed_at is None:
        return None
    return next(
        (
            c.certificate_id
            for c in state.certificates.values()
            if (c.entitlement_id, c.run) == (entitlement_id, enrollment.restart_count)
        ),
        None,
    )


class FakeStorage:
    """The player's storage port on :class:`State`: a transaction's changes and events are
    kept only when its block ends without an error."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.published: list[Envelope[Event]] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PlayerTransaction]:
        before = copy.deepcopy(self.state)
        events = FakeEvents()
        try:
            yield PlayerTransaction(store=FakeStore(self.state), events=events)
        except BaseException:
            self.state.__dict__.update(before.__dict__)
            raise
        self.published.extend(events.staged)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[FakeReader]:
        yield FakeReader(self.state)


class FakeDirectory:
    """A :class:`~coursemesh.chassis.staff.StaffDirectory` on :class:`State`."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.asked = 0

    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool:
        self.asked += 1
        return (organization_id, user_id) in self.state.staff


class FakeStaffStorage:
    def __init__(self, state: State) -> None:
        self.state = state
        self.directory = FakeDirectory(state)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StaffTransaction]:
        yield StaffTransaction(store=FakeStore(self.state), directory=self.directory)


# --- building state --------------------------------------------------------------------------

ORG = uuid.UUID("0195f0a0-0000-7000-8000-000000000001")
COURSE = uuid.UUID("0195f0a0-0000-7000-8000-000000000002")
WORKOUT_A = uuid.UUID("0195f0a0-0000-7000-8000-000000000003")
WORKOUT_B = uuid.UUID("0195f0a0-0000-7000-8000-000000000004")
ITEM_A0 = uuid.UUID("0195f0a0-0000-7000-8000-000000000005")
ITEM_B0 = uuid.UUID("0195f0a0-0000-7000-8000-000000000006")
ITEM_A2 = uuid.UUID("0195f0a0-0000-7000-8000-000000000007")


def three_days() -> list[Day]:
    """Day 0: workouts A and B; day 1: rest; day 2: workout A again."""
    return [
        Day(
            day_offset=0,
            is_rest=False,
            items=[
                Item(item_id=ITEM_A0, workout_id=WORKOUT_A, position=0),
                Item(item_id=ITEM_B0, workout_id=WORKOUT_B, position=1),
            ],
        ),
        Day(day_offset=1, is_rest=True, items=[]),
        Day(
            day_offset=2,
            is_rest=False,
            items=[Item(item_id=ITEM_A2, workout_id=WORKOUT_A, position=0)],
        ),
    ]


def add_course(state: State, days: list[Day] | None = None, organization: uuid.UUID = ORG) -> None:
    days = three_days() if days is None else days
    state.courses[COURSE] = Course(
        details=CourseDetails(
            course_id=COURSE,
            organization_id=organization,
            name="30-day reset",
            image_url=None,
            duration_days=len(days),
            status="published",
            curriculum_version=1,
        ),
        days=days,
    )
    for workout_id, title in ((WORKOUT_A, "Mobility flow"), (WORKOUT_B, "Core")):
        state.workouts[workout_id] = Workout(
            workout_id=workout_id,
            title=title,
            description=None,
            duration_minutes=20,
            instructions="Breathe.",
            media_urls=[],
        )


def entitle(
    state: State,
    user_id: str,
    status: str = "active",
    revoked_at: datetime | None = None,
    course_id: uuid.UUID = COURSE,
) -> Entitlement:
    entitlement = Entitlement(
        entitlement_id=uuid.uuid4(),
        user_id=user_id,
        course_id=course_id,
        organization_id=ORG,
        status=status,
        access_revoked_at=revoked_at,
    )
    state.entitlements[entitlement.entitlement_id] = entitlement
    return entitlement


def snapshot_of(state: State) -> bytes:
    """Everything a refused call must leave as it was."""
    return msgspec.json.encode(
        [
            sorted(state.enrollments.items(), key=lambda kv: str(kv[0])),
            sorted(
                ((str(k), sorted(map(str, v))) for k, v in state.completions.items()),
            ),
            len(state.history),
        ]
    )


class FakeCertificateFiles:
    """The object store of certificates' PDFs; ``broken`` makes every call fail."""

    def __init__(self) -> None:
        self.objects: dict[uuid.UUID, bytes] = {}
        self.puts = 0
        self.broken = False

    async def put(self, certificate_id: uuid.UUID, pdf: bytes) -> None:
        if self.broken:
            raise CertificateFileError("the store is down")
        self.puts += 1
        self.objects[certificate_id] = pdf

    async def get(self, certificate_id: uuid.UUID) -> bytes:
        if self.broken or certificate_id not in self.objects:
            raise CertificateFileError("the store is down")
        return self.objects[certificate_id]


def fake_render(certificate: Certificate) -> bytes:
    """A stand-in PDF: the fields a certificate prints."""
    printed = (certificate.certificate_id, certificate.learner_name, certificate.course_name)
    return "|".join(str(p) for p in printed).encode()
