"""What the use cases need from storage, as Protocols (the SQL adapter implements them)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal, Protocol

import msgspec

from coursemesh.learning.domain.player import Access, Day, curriculum_length


class Entitlement(msgspec.Struct, frozen=True, kw_only=True):
    entitlement_id: uuid.UUID
    user_id: str
    course_id: uuid.UUID
    organization_id: uuid.UUID
    status: str
    access_revoked_at: datetime | None

    @property
    def access(self) -> Access:
        return Access(status=self.status, access_revoked=self.access_revoked_at is not None)


class Course(msgspec.Struct, frozen=True, kw_only=True):
    course_id: uuid.UUID
    organization_id: uuid.UUID
    name: str | None
    image_url: str | None
    duration_days: int | None
    status: str | None
    curriculum_version: int | None
    days: list[Day]

    @property
    def length(self) -> int:
        """Days of the dense curriculum: the curriculum's own length, else the details'."""
        return curriculum_length(self.days, self.duration_days)


class Enrollment(msgspec.Struct, frozen=True, kw_only=True):
    entitlement_id: uuid.UUID
    start_date: date | None
    completed_at: datetime | None
    restart_count: int
    last_activity_at: datetime | None
    version: int


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    item_id: uuid.UUID
    workout_id: uuid.UUID
    day_offset: int
    curriculum_version: int
    completed_at: datetime


class Workout(msgspec.Struct, frozen=True, kw_only=True):
    workout_id: uuid.UUID
    title: str | None
    description: str | None
    duration_minutes: int | None
    instructions: str | None
    media_urls: list[str]


class LibraryEntry(msgspec.Struct, frozen=True, kw_only=True):
    entitlement: Entitlement
    course_name: str | None
    image_url: str | None
    duration_days: int | None
    total_items: int
    completed_items: int
    start_date: date | None
    completed_at: datetime | None


class EnrollmentRow(msgspec.Struct, frozen=True, kw_only=True):
    """One buyer of a course as staff see it."""

    entitlement_id: uuid.UUID
    user_id: str
    start_date: date | None
    completed_at: datetime | None
    restart_count: int
    last_activity_at: datetime | None
    completed_items: int
    total_items: int


class CourseDetails(msgspec.Struct, frozen=True, kw_only=True):
    """What the player shows of a course besides its curriculum."""

    course_id: uuid.UUID
    organization_id: uuid.UUID
    name: str | None
    image_url: str | None
    duration_days: int | None
    status: str | None
    curriculum_version: int | None


# Held by a reader across requests (no cycles possible): untracked by the cyclic collector.
class Curriculum(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A course's curriculum at one version and the workouts its items show: the part of the
    player's answer that is the same for every buyer of the course.

    A reader hands out the same instance for as long as neither the curriculum nor any of those
    workouts changes, and a new one as soon as one does, so work derived from it (the rendered
    days) can be kept per instance.
    """

    days: list[Day]
    workouts: dict[uuid.UUID, Workout]


EMPTY_CURRICULUM = Curriculum(days=[], workouts={})


class PlayerSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the player shows for one buyer and course, read at once.

    Completed ids are canonical UUID text, sorted: the answer shows them as text, and a ``str``
    hashes and compares in C where a ``uuid.UUID`` does so in Python code.
    """

    entitlement: Entitlement
    course: CourseDetails | None
    curriculum: Curriculum | None
    enrollment: Enrollment | None
    completed_item_ids: list[str]
    completed_workout_ids: list[str]  # distinct


class PlayerReader(Protocol):
    async def snapshot(self, user_id: str, course_id: uuid.UUID) -> PlayerSnapshot | None:
        """None when the user holds no entitlement to the course."""
        ...


SortKey = Literal["lastActivityAt", "startDate", "completedCount", "userId"]


class PlayerStore(Protocol):
    async def entitlement(self, user_id: str, course_id: uuid.UUID) -> Entitlement | None: ...

    async def course(self, course_id: uuid.UUID) -> Course | None: ...

    async def enrollment(self, entitlement_id: uuid.UUID) -> Enrollment | None: ...

    async def lock_enrollment(self, entitlement: Entitlement) -> Enrollment:
        """The enrollment row, created when missing, locked until the transaction ends."""
        ...

    async def save_enrollment(self, enrollment: Enrollment) -> None: ...

    async def completions(self, entitlement_id: uuid.UUID) -> list[Completion]: ...

    async def add_completion(self, entitlement_id: uuid.UUID, completion: Completion) -> bool:
        """Insert; False when the item was already complete (ON CONFLICT DO NOTHING)."""
        ...

    async def remove_completion(self, entitlement_id: uuid.UUID, item_id: uuid.UUID) -> bool: ...

    async def archive_completions(
        self, entitlement_id: uuid.UUID, *, run: int, reason: str, now: datetime
    ) -> int:
        """Move every completion of the enrollment to the history table."""
        ...

    async def workouts(self, workout_ids: set[uuid.UUID]) -> dict[uuid.UUID, Workout]: ...

    async def library(self, user_id: str) -> list[LibraryEntry]: ...


class StaffStore(Protocol):
    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool: ...

    async def course(self, course_id: uuid.UUID) -> Course | None: ...

    async def enrollment_rows(
        self,
        course_id: uuid.UUID,
        *,
        sort: SortKey,
        descending: bool,
        limit: int | None,
        offset: int,
    ) -> tuple[list[EnrollmentRow], int]: ...
