"""Events produced by the learning service (stream ``LEARNING``, subjects ``learning.>``).

Aggregate: the buyer's enrollment in a course, identified by its entitlement id (one enrollment
per entitlement). One version counter per enrollment, shared by all four events.
"""

from __future__ import annotations

import uuid
from datetime import date

from coursemesh.contracts.envelope import Event, event
from coursemesh.contracts.types import (
    NonEmptyStr,
    NonNegativeInt,
    PositiveInt,
    UserId,
    UtcDateTime,
)

__all__ = [
    "CourseCompleted",
    "CourseRestarted",
    "CourseStarted",
    "EnrollmentPaused",
    "EnrollmentResumed",
    "EnrollmentUnlocked",
    "WorkoutCompleted",
]


@event("learning.course.started.v1")
class CourseStarted(Event, frozen=True, kw_only=True):
    """A buyer started a course (``POST /me/courses/:id/start``): start date stamped, completion
    cleared. Emitted again if the buyer moves the start date."""

    entitlement_id: uuid.UUID
    user_id: UserId
    course_id: uuid.UUID
    organization_id: uuid.UUID
    start_date: date
    """The calendar day that is day 0, in the buyer's time zone."""
    restart_count: NonNegativeInt


@event("learning.workout.completed.v1")
class WorkoutCompleted(Event, frozen=True, kw_only=True):
    """A buyer marked one curriculum item (a workout on a given day) complete.

    Emitted only when a completion is actually recorded (not for an idempotent repeat).
    """

    entitlement_id: uuid.UUID
    user_id: UserId
    course_id: uuid.UUID
    organization_id: uuid.UUID
    item_id: uuid.UUID
    workout_id: uuid.UUID
    day_offset: NonNegativeInt
    curriculum_version: NonNegativeInt
    """The curriculum version the item belonged to when it was completed."""
    completed_at: UtcDateTime


@event("learning.course.completed.v1")
class CourseCompleted(Event, frozen=True, kw_only=True):
    """Every workout item of the course is complete: the enrollment's ``completed_at`` was set."""

    entitlement_id: uuid.UUID
    user_id: UserId
    course_id: uuid.UUID
    organization_id: uuid.UUID
    completed_at: UtcDateTime
    certificate_id: uuid.UUID | None = None
    """The certificate issued for this run (``GET /public/certificates/:id``); None in events
    published before certificates existed."""


@event("learning.course.restarted.v1")
class CourseRestarted(Event, frozen=True, kw_only=True):
    """A buyer restarted a course: new start date, completion cleared, ``restart_count`` + 1,
    the previous run's completions moved to history."""

    entitlement_id: uuid.UUID
    user_id: UserId
    course_id: uuid.UUID
    organization_id: uuid.UUID
    restart_count: PositiveInt
    start_date: date


@event("learning.enrollment.paused.v1")
class EnrollmentPaused(Event, frozen=True, kw_only=True):
    """A buyer's course was paused (by the buyer or by staff): the current day stops advancing
    and no day opens until it is resumed."""

    entitlement_id: uuid.UUID
    user_id: UserId
    course_id: uuid.UUID
    organization_id: uuid.UUID
    paused_on: date
    """The buyer's calendar day the pause began on."""
    paused_by: UserId
    """The buyer, or the staff member who paused for them."""
    run: NonNegativeInt
    """The run (``restart_count``) the pause belongs to."""


@event("learning.enrollment.resumed.v1")
class EnrollmentResumed(Event, frozen=True, kw_only=True):
    """A paused course was resumed: the schedule is shifted by ``paused_days`` (whole days)."""

    entitlement_id: uuid.UUID
    user_id: UserId
    course_id: uuid.UUID
    organization_id: uuid.UUID
    paused_on: date
    resumed_on: date
    paused_days: NonNegativeInt
    """Days this pause shifted the schedule by (within the course's ``max_pause_days``)."""
    total_paused_days: NonNegativeInt
    """Days every pause of the run shifted it by: day n opens on start date + n + this."""
    resumed_by: UserId
    run: NonNegativeInt


@event("learning.enrollment.unlocked.v1")
class EnrollmentUnlocked(Event, frozen=True, kw_only=True):
    """Staff opened every day of a daily release for one buyer (an override, for the rest of
    the run). Each unlock is one event: the enrollment keeps only the latest."""

    entitlement_id: uuid.UUID
    user_id: UserId
    course_id: uuid.UUID
    organization_id: uuid.UUID
    unlocked_at: UtcDateTime
    unlocked_by: UserId
    """The staff member who unlocked."""
    reason: NonEmptyStr
    run: NonNegativeInt
