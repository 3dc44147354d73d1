"""Request and response bodies of the learning API (camelCase on the wire)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

from coursemesh.learning.domain.sync import StateDoc, SyncDocument, SyncFile

DayOffset = Annotated[int, msgspec.Meta(ge=0, le=3650)]


class StartRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    start_date: date | None = None


class CompleteRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    day_offset: DayOffset | None = None


class _Out(msgspec.Struct, rename="camel", kw_only=True, frozen=True, gc=False):
    """Response bodies: built, encoded, dropped; never in a reference cycle, so the cyclic
    collector need not track them (a player answer is one per curriculum item)."""


class Progress(_Out, frozen=True):
    completed: int
    total: int


class LibraryCourse(_Out, frozen=True):
    course_id: uuid.UUID
    organization_id: uuid.UUID
    entitlement_id: uuid.UUID
    name: str | None
    image_url: str | None
    duration_days: int | None
    start_date: date | None
    current_day_offset: int | None
    completed_at: datetime | None
    progress: Progress


class Library(_Out, frozen=True):
    courses: list[LibraryCourse]


class WorkoutSummary(_Out, frozen=True):
    title: str | None
    description: str | None
    duration_minutes: int | None


class PlayerItem(_Out, frozen=True):
    item_id: uuid.UUID
    workout_id: uuid.UUID
    position: int
    completed: bool
    workout: WorkoutSummary | None


class PlayerDay(_Out, frozen=True):
    day_offset: int
    is_rest: bool
    locked: bool  # a daily release has not opened it: its items are not shown
    opens_on: date | None  # of a locked day, when known (not while paused or before the start)
    items: list[PlayerItem]


class PauseOut(_Out, frozen=True):
    run: int
    paused_on: date
    paused_at: datetime
    paused_by: str
    resumed_on: date | None
    resumed_at: datetime | None
    resumed_by: str | None
    days: int | None  # whole days it shifted the schedule by, once resumed


class EntitlementOut(_Out, frozen=True):
    id: uuid.UUID
    status: str
    start_date: date | None
    completed_at: datetime | None
    restart_count: int
    last_activity_at: datetime | None


class PlayerCourse(_Out, frozen=True):
    course_id: uuid.UUID
    organization_id: uuid.UUID
    name: str | None
    image_url: str | None
    course_status: str | None
    duration_days: int
    curriculum_version: int | None
    entitlement: EntitlementOut
    current_day_offset: int | None
    release_mode: str
    paused: bool
    paused_since: date | None
    paused_days: int
    unlocked: bool
    days: list[PlayerDay]
    completed_course_workout_ids: list[uuid.UUID]
    completed_item_ids: list[uuid.UUID]
    progress: Progress
    adherence_percent: int | None  # null while nothing is due
    current_streak: int
    longest_streak: int
    pauses: list[PauseOut]
    certificate_id: uuid.UUID | None  # once the run is completed (GET …/certificate)


class PlayerCourseHead(_Out, frozen=True):
    """:class:`PlayerCourse`'s fields before ``days``, for the pre-rendered answer
    (``http/player_body.py``; a test checks the split matches :class:`PlayerCourse`)."""

    course_id: uuid.UUID
    organization_id: uuid.UUID
    name: str | None
    image_url: str | None
    course_status: str | None
    duration_days: int
    curriculum_version: int | None
    entitlement: EntitlementOut
    current_day_offset: int | None
    release_mode: str
    paused: bool
    paused_since: date | None
    paused_days: int
    unlocked: bool


class PlayerCourseTail(_Out, frozen=True):
    """:class:`PlayerCourse`'s fields after ``days``; the ids as the canonical text a UUID
    encodes to."""

    completed_course_workout_ids: list[str]
    completed_item_ids: list[str]
    progress: Progress
    adherence_percent: int | None
    current_streak: int
    longest_streak: int
    pauses: list[PauseOut]
    certificate_id: uuid.UUID | None


class OccurrenceOut(_Out, frozen=True):
    item_id: uuid.UUID
    day_offset: int
    completed: bool


class PlayerWorkout(_Out, frozen=True):
    workout_id: uuid.UUID
    title: str | None
    description: str | None
    duration_minutes: int | None
    instructions: str | None
    media_urls: list[str]
    curriculum_version: int | None
    occurrences: list[OccurrenceOut]


class EnrollmentOut(_Out, frozen=True):
    entitlement_id: uuid.UUID
    start_date: date | None
    completed_at: datetime | None
    restart_count: int
    last_activity_at: datetime | None


class CompletionOut(_Out, frozen=True):
    workout_id: uuid.UUID
    item_id: uuid.UUID | None
    day_offset: int | None
    completed: bool
    changed: bool
    curriculum_version: int | None
    completed_item_ids: list[uuid.UUID]
    course_completed_at: datetime | None
    progress: Progress


class StaffEnrollment(_Out, frozen=True):
    entitlement_id: uuid.UUID
    user_id: str
    start_date: date | None
    current_day_offset: int | None
    completed_count: int
    total_count: int
    completed_at: datetime | None
    restart_count: int
    last_activity_at: datetime | None
    adherence_percent: int | None = None
    current_streak: int = 0
    longest_streak: int = 0
    paused: bool = False
    paused_since: date | None = None
    unlocked_at: datetime | None = None
    unlocked_by: str | None = None
    unlock_reason: str | None = None
    pauses: list[PauseOut] = []


class CourseSummaryOut(_Out, frozen=True):
    enrolled: int
    started: int
    active_last_7_days: int
    completed: int
    median_adherence_percent: int | None


class StaffEnrollmentPage(_Out, frozen=True):
    items: list[StaffEnrollment]
    total: int
    limit: int
    offset: int


class ReminderRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    """``localTime`` ``HH:MM`` and ``timeZone`` an IANA name: checked by the use case (422
    ``INVALID_LOCAL_TIME`` / ``INVALID_TIME_ZONE``)."""

    enabled: bool
    local_time: Annotated[str, msgspec.Meta(max_length=16)]
    time_zone: Annotated[str, msgspec.Meta(max_length=64)]


class ReminderOut(_Out, frozen=True):
    enabled: bool
    local_time: str | None
    time_zone: str | None
    email: str | None


class UnsubscribeOut(_Out, frozen=True):
    enabled: bool


class PublicCertificate(_Out, frozen=True):
    """What anyone holding a certificate's link may check: what the certificate prints, and
    whether it still stands."""

    certificate_id: uuid.UUID
    learner_name: str
    course_name: str
    organization_name: str | None
    organization_logo_url: str | None
    completed_on: date
    status: Literal["valid", "revoked"]


class UnlockRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class PauseState(_Out, frozen=True):
    """An enrollment after a pause, a resume or an unlock."""

    entitlement_id: uuid.UUID
    start_date: date | None
    current_day_offset: int | None
    release_mode: str
    paused: bool
    paused_since: date | None
    paused_days: int
    unlocked_at: datetime | None
    unlocked_by: str | None
    unlock_reason: str | None
    pauses: list[PauseOut]


# --- offline sync ------------------------------------------------------------------------------

SyncCursor = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
TZ_DATETIME = Annotated[datetime, msgspec.Meta(tz=True)]
Md5Hex = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$")]
MAX_OPERATIONS = 500
#: Checksums one sanity check compares (more: 422 ``SYNC_TOO_MANY_COURSES``).
MAX_SANITY_COURSES = 1000


class SyncRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    cursor: SyncCursor | None = None  # absent: the first sync
    page: SyncCursor | None = None  # the cursor of a paged answer (wins over ``cursor``)


class OperationIn(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    id: uuid.UUID
    type: Literal["complete", "unmark", "start", "restart"]
    course_id: uuid.UUID
    at: TZ_DATETIME
    workout_id: uuid.UUID | None = None
    day_offset: DayOffset | None = None


class OperationsRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    operations: Annotated[list[OperationIn], msgspec.Meta(min_length=1, max_length=MAX_OPERATIONS)]


class SanityCounts(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    courses: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]


class SanityRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    counts: SanityCounts
    checksums: dict[uuid.UUID, Md5Hex]


class SyncOut(_Out, frozen=True):
    cursor: str
    courses: list[SyncDocument]  # tagged by ``kind``: "trainer" or "custom"
    removed: list[uuid.UUID]
    # Files a device downloads beside the documents: the custom courses' audio.
    files: list[SyncFile]
    more: bool


class AppliedOut(_Out, frozen=True):
    id: uuid.UUID
    type: str
    course_id: uuid.UUID


class RejectedOut(_Out, frozen=True):
    id: uuid.UUID
    code: str
    detail: str


class CourseStateOut(_Out, frozen=True):
    course_id: uuid.UUID
    state: StateDoc


class OperationsOut(_Out, frozen=True):
    applied: list[AppliedOut]
    rejected: list[RejectedOut]
    state: list[CourseStateOut]
    cursor: str


class SanityOut(_Out, frozen=True):
    ok: bool
    refetch: list[uuid.UUID]
    remove: list[uuid.UUID]
    missing: list[uuid.UUID]
