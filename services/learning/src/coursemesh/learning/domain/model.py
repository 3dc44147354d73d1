"""What the player is about: entitlements, enrollments, completions, courses and their
curricula, as values (no I/O, no framework)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

import msgspec


# Curricula are decoded into these and held across requests (no cycles possible): untracked by
# the cyclic collector.
class Item(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One workout on one day: the unit a completion is recorded for."""

    item_id: uuid.UUID
    workout_id: uuid.UUID
    position: int


class Day(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    day_offset: int
    is_rest: bool
    items: list[Item]


class Access(msgspec.Struct, frozen=True, kw_only=True):
    """What the projection says of the caller's entitlement to a course."""

    status: str
    access_revoked: bool


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


class Enrollment(msgspec.Struct, frozen=True, kw_only=True):
    entitlement_id: uuid.UUID
    start_date: date | None
    completed_at: datetime | None
    restart_count: int
    last_activity_at: datetime | None
    version: int
    # Staff opened every day of a daily-release course for this buyer.
    unlocked_at: datetime | None = None
    unlocked_by: str | None = None
    unlock_reason: str | None = None


class Pause(msgspec.Struct, frozen=True, kw_only=True):
    """One pause of an enrollment; ``resumed_on`` None while it lasts. Dates are the buyer's
    calendar days; ``days`` is what it shifted the schedule by, once resumed."""

    run: int
    paused_on: date
    paused_at: datetime
    paused_by: str
    resumed_on: date | None = None
    resumed_at: datetime | None = None
    resumed_by: str | None = None
    days: int | None = None


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


class CourseDetails(msgspec.Struct, frozen=True, kw_only=True):
    """What the player shows of a course besides its curriculum."""

    course_id: uuid.UUID
    organization_id: uuid.UUID
    name: str | None
    image_url: str | None
    duration_days: int | None
    status: str | None
    curriculum_version: int | None
    release_mode: str = "open"  # "open" | "daily"
    max_pauses: int | None = None  # per run; None: unlimited
    max_pause_days: int | None = None  # per run; None: unlimited


class Course(msgspec.Struct, frozen=True, kw_only=True):
    """A course with its days, as a write reads it."""

    details: CourseDetails
    days: list[Day]


# Held by the process across requests (no cycles possible): untracked by the cyclic collector.
class Curriculum(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A course's curriculum at one version and the workouts its items show: the part of the
    player's answer that is the same for every buyer of the course.

    The read model hands out the same instance for as long as neither the curriculum nor any
    of those workouts changes, and a new one as soon as one does, so work derived from it (the
    rendered days) can be kept per instance.
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
    course: CourseDetails | None  # None: catalog's events about the course have not arrived
    curriculum: Curriculum | None
    enrollment: Enrollment | None
    completed_item_ids: list[str]
    completed_workout_ids: list[str]  # distinct, sorted
    certificate_id: uuid.UUID | None = None  # the certificate of the run, once it is completed
    pauses: list[Pause] = []  # every run's, oldest first
    # When each of ``completed_item_ids`` was completed, in the same order (adherence).
    completed_times: list[datetime] = []


class Clock(msgspec.Struct, frozen=True, kw_only=True):
    """The instant of the request and the buyer's zone: "today" for the player."""

    now: datetime
    zone: ZoneInfo

    @property
    def today(self) -> date:
        return self.now.astimezone(self.zone).date()
