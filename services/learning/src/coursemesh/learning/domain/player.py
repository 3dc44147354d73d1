"""Pure rules of the player: access, the current day, which occurrence a completion is about,
and what each player action decides.

No I/O here: a use case loads the state through its ports, asks these functions, and stores
what they decide.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from coursemesh.chassis.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from coursemesh.learning.domain.certificate import Certificate
from coursemesh.learning.domain.model import (
    EMPTY_CURRICULUM,
    Access,
    Course,
    CourseDetails,
    Curriculum,
    Day,
    Enrollment,
    Entitlement,
    Pause,
    PlayerSnapshot,
    Workout,
)
from coursemesh.learning.domain.schedule import schedule

UTC_ZONE = ZoneInfo("UTC")

# A start date further than this from the buyer's today is a typo, not a plan.
START_DATE_WINDOW = timedelta(days=366)


class Occurrence(msgspec.Struct, frozen=True, kw_only=True):
    """Where a workout appears: the item and the day it is on."""

    item_id: uuid.UUID
    workout_id: uuid.UUID
    day_offset: int


# --- time ------------------------------------------------------------------------------------


def parse_time_zone(name: str | None) -> ZoneInfo:
    """The buyer's IANA zone; UTC when none is given."""
    if name is None or name == "":
        return UTC_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(
            f"{name!r} is not an IANA time zone name", code="INVALID_TIME_ZONE"
        ) from None


def today_in(zone: ZoneInfo, now: datetime) -> date:
    return now.astimezone(zone).date()


def current_day_offset(start_date: date | None, today: date) -> int | None:
    """Day n of the course: floor((today - startDate) / 1 day); negative before the start."""
    if start_date is None:
        return None
    return (today - start_date).days


def check_start_date(start_date: date, today: date) -> None:
    if abs(start_date - today) > START_DATE_WINDOW:
        raise Unprocessable(
            f"startDate must be within {START_DATE_WINDOW.days} days of today ({today})",
            code="START_DATE_OUT_OF_RANGE",
        )


# --- access ----------------------------------------------------------------------------------


def require_access(access: Access | None) -> None:
    """Only an active entitlement opens the player; another buyer's course is simply unknown."""
    if access is None:
        raise NotFound("You do not own this course", code="COURSE_NOT_OWNED")
    if access.status == "revoked" or access.access_revoked:
        raise Forbidden("Access to this course was revoked", code="ENTITLEMENT_REVOKED")
    if access.status == "pending":
        raise Forbidden("The payment for this course is in flight", code="ENTITLEMENT_PENDING")
    if access.status != "active":
        raise Forbidden("This course is not accessible", code="ENTITLEMENT_INACTIVE")


# --- curriculum ------------------------------------------------------------------------------


def curriculum_length(days: Sequence[Day], duration_days: int | None) -> int:
    """Days of the dense curriculum: the curriculum's own length, else the course details'."""
    if days:
        return len(days)
    return duration_days or 0


def dense_days(duration_days: int, days: Sequence[Day]) -> list[Day]:
    """Every day 0..duration_days-1, in order; a day the curriculum does not mention is empty."""
    by_offset = {d.day_offset: d for d in days}
    return [
        by_offset.get(offset, Day(day_offset=offset, is_rest=False, items=[]))
        for offset in range(duration_days)
    ]


def occurrences(days: Iterable[Day], workout_id: uuid.UUID) -> list[Occurrence]:
    """The items of ``workout_id`` in day order (a workout may be on several days)."""
    return [
        Occurrence(item_id=item.item_id, workout_id=item.workout_id, day_offset=day.day_offset)
        for day in sorted(days, key=lambda d: d.day_offset)
        for item in sorted(day.items, key=lambda i: i.position)
        if item.workout_id == workout_id
    ]


def workout_item_ids(days: Iterable[Day]) -> set[uuid.UUID]:
    return {item.item_id for day in days for item in day.items}


def require_in_course(days: Iterable[Day], workout_id: uuid.UUID) -> list[Occurrence]:
    """The workout's occurrences; 404 when it is not in the curriculum (also for a workout of
    the same organization's library that this course does not use)."""
    found = occurrences(days, workout_id)
    if not found:
        raise NotFound("This workout is not part of the course", code="WORKOUT_NOT_IN_COURSE")
    return found


def _on_day(days: Sequence[Day], found: list[Occurrence], day_offset: int) -> Occurrence:
    for occurrence in found:
        if occurrence.day_offset == day_offset:
            return occurrence
    if any(d.day_offset == day_offset and d.is_rest for d in days):
        raise NotFound("A rest day cannot be completed", code="REST_DAY")
    raise NotFound(f"This workout is not scheduled on day {day_offset}", code="WORKOUT_NOT_ON_DAY")


def occurrence_to_complete(
    days: Sequence[Day],
    workout_id: uuid.UUID,
    completed: set[uuid.UUID],
    day_offset: int | None,
) -> Occurrence:
    """The item a mark-complete is about: the given day's, else the earliest not yet completed
    (the earliest of all when every occurrence is complete: the repeat is then a no-op)."""
    found = require_in_course(days, workout_id)
    if day_offset is not None:
        return _on_day(days, found, day_offset)
    open_ones = [o for o in found if o.item_id not in completed]
    return open_ones[0] if open_ones else found[0]


def occurrence_to_unmark(
    days: Sequence[Day],
    workout_id: uuid.UUID,
    completed: set[uuid.UUID],
    day_offset: int | None,
) -> Occurrence | None:
    """The item an unmark is about: the given day's, else the latest completed one (None when
    nothing is completed: the unmark is then a no-op)."""
    found = require_in_course(days, workout_id)
    if day_offset is not None:
        return _on_day(days, found, day_offset)
    done = [o for o in found if o.item_id in completed]
    return done[-1] if done else None


def is_course_complete(days: Iterable[Day], completed: set[uuid.UUID]) -> bool:
    """Complete when every workout item is; a curriculum without workouts never is."""
    items = workout_item_ids(days)
    return bool(items) and items <= completed


# --- what each action decides ------------------------------------------------------------------


def course_or_unknown(course: CourseDetails | None, entitlement: Entitlement) -> CourseDetails:
    """The course an owner sees. Owned but catalog's events have not arrived yet: an empty
    course (no name, no days), not an error."""
    if course is not None:
        return course
    return CourseDetails(
        course_id=entitlement.course_id,
        organization_id=entitlement.organization_id,
        name=None,
        image_url=None,
        duration_days=None,
        status=None,
        curriculum_version=None,
    )


def owned(entitlement: Entitlement | None) -> Entitlement:
    """The caller's entitlement, when it opens the player (see :func:`require_access`)."""
    require_access(None if entitlement is None else entitlement.access)
    assert entitlement is not None  # require_access raised otherwise
    return entitlement


class CourseView(msgspec.Struct, frozen=True, kw_only=True):
    """What the player shows of one course to one buyer (see ``PlayerSnapshot`` for the ids)."""

    entitlement: Entitlement
    course: CourseDetails
    curriculum: Curriculum  # shared by every buyer; the days as the projection holds them
    length: int  # days of the dense curriculum (days 0..length-1)
    enrollment: Enrollment | None
    completed_item_ids: list[str]
    completed_workout_ids: list[str]
    today: date
    certificate_id: uuid.UUID | None = None  # the completed run's certificate
    pauses: list[Pause] = []  # every run's, oldest first
    completed_times: list[datetime] = []  # aligned with ``completed_item_ids``
    zone: ZoneInfo = UTC_ZONE  # the buyer's: the local dates of the completions


def course_view(
    snapshot: PlayerSnapshot | None, today: date, zone: ZoneInfo = UTC_ZONE
) -> CourseView:
    """What the player shows: refused unless the entitlement opens the player; a course whose
    content has not arrived is empty."""
    require_access(None if snapshot is None else snapshot.entitlement.access)
    assert snapshot is not None  # require_access raised otherwise
    course = course_or_unknown(snapshot.course, snapshot.entitlement)
    curriculum = snapshot.curriculum or EMPTY_CURRICULUM
    return CourseView(
        entitlement=snapshot.entitlement,
        course=course,
        curriculum=curriculum,
        length=curriculum_length(curriculum.days, course.duration_days),
        enrollment=snapshot.enrollment,
        completed_item_ids=snapshot.completed_item_ids,
        completed_workout_ids=snapshot.completed_workout_ids,
        today=today,
        certificate_id=snapshot.certificate_id,
        pauses=snapshot.pauses,
        completed_times=snapshot.completed_times,
        zone=zone,
    )


class WorkoutView(msgspec.Struct, frozen=True, kw_only=True):
    workout_id: uuid.UUID
    workout: Workout | None
    occurrences: list[Occurrence]
    completed_item_ids: set[uuid.UUID]
    curriculum_version: int | None


def workout_view(view: CourseView, workout_id: uuid.UUID) -> WorkoutView:
    """One workout of the course with its occurrences on the days open to this buyer; 404 when
    the course does not use it, 409 ``DAY_LOCKED`` when a daily release opens none of its days
    yet (a locked day shows its title and date, never its workouts)."""
    found = require_in_course(view.curriculum.days, workout_id)
    plan = schedule(view.course, view.enrollment, view.pauses, view.today)
    shown = [o for o in found if not plan.locked(o.day_offset)]
    if not shown:
        raise Conflict("This workout is on days that are not open yet", code="DAY_LOCKED")
    done = {uuid.UUID(i) for i in view.completed_item_ids}
    return WorkoutView(
        workout_id=workout_id,
        workout=view.curriculum.workouts.get(workout_id),
        occurrences=shown,
        completed_item_ids=done & {o.item_id for o in shown},
        curriculum_version=view.course.curriculum_version,
    )


def first_day(start_date: date | None, today: date) -> date:
    """The day a start starts the course: the given one or today, within a year of today
    either way (422 ``START_DATE_OUT_OF_RANGE`` otherwise)."""
    day0 = start_date or today
    check_start_date(day0, today)
    return day0


def start_run(current: Enrollment, day0: date, now: datetime) -> Enrollment:
    """Start (or start again) on ``day0``: the course is no longer complete. One event, so one
    version."""
    return msgspec.structs.replace(
        current,
        start_date=day0,
        completed_at=None,
        last_activity_at=now,
        version=current.version + 1,
    )


class Restart(msgspec.Struct, frozen=True, kw_only=True):
    archived_run: int  # the run whose completions move to history
    enrollment: Enrollment


def restart_run(current: Enrollment, today: date, now: datetime) -> Restart:
    """A new run starting today; the finished run's completions go to history (restarting a
    course never started is starting it, as run 1). One event, so one version."""
    return Restart(
        archived_run=current.restart_count,
        enrollment=msgspec.structs.replace(
            current,
            start_date=today,
            completed_at=None,
            restart_count=current.restart_count + 1,
            last_activity_at=now,
            version=current.version + 1,
        ),
    )


class CompletionOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a mark or an unmark decided: the occurrence it was about (None: nothing to unmark),
    the enrollment after it, and the versions of the events it publishes (None: no event)."""

    occurrence: Occurrence | None
    completed: bool  # a mark (True) or an unmark (False)
    changed: bool
    enrollment: Enrollment
    completed_item_ids: set[uuid.UUID]
    total_items: int
    curriculum_version: int | None
    workout_completed_version: int | None = None
    course_completed_version: int | None = None
    certificate: Certificate | None = None  # issued (or found) by this completion of the course


def after_mark(
    current: Enrollment,
    course: Course,
    completed: set[uuid.UUID],
    occurrence: Occurrence,
    recorded: bool,
    now: datetime,
) -> CompletionOutcome:
    """After ``occurrence`` was marked (``recorded``: the completion was new): one
    ``workout.completed`` event for a new completion, and ``course.completed`` when that made
    every workout item complete (once: a course already complete stays as it is)."""
    done = completed | {occurrence.item_id} if recorded else set(completed)
    version = current.version
    workout_completed = None
    if recorded:
        version += 1
        workout_completed = version
    completed_at = current.completed_at
    course_completed = None
    if completed_at is None and is_course_complete(course.days, done):
        completed_at = now
        version += 1
        course_completed = version
    return CompletionOutcome(
        occurrence=occurrence,
        completed=True,
        changed=recorded,
        enrollment=msgspec.structs.replace(
            current, completed_at=completed_at, last_activity_at=now, version=version
        ),
        completed_item_ids=done,
        total_items=_total_items(course.days),
        curriculum_version=course.details.curriculum_version,
        workout_completed_version=workout_completed,
        course_completed_version=course_completed,
    )


def after_unmark(
    current: Enrollment,
    course: Course,
    completed: set[uuid.UUID],
    occurrence: Occurrence | None,
    removed: bool,
    now: datetime,
) -> CompletionOutcome:
    """After ``occurrence`` was unmarked (``removed``: it was complete): ``completedAt`` is
    re-derived, so an unmark that leaves an item open clears it. No event."""
    done = set(completed)
    if occurrence is not None:
        done.discard(occurrence.item_id)
    completed_at = current.completed_at if is_course_complete(course.days, done) else None
    return CompletionOutcome(
        occurrence=occurrence,
        completed=False,
        changed=removed,
        enrollment=msgspec.structs.replace(
            current, completed_at=completed_at, last_activity_at=now
        ),
        completed_item_ids=done,
        total_items=_total_items(course.days),
        curriculum_version=course.details.curriculum_version,
    )


def _total_items(days: Iterable[Day]) -> int:
    return sum(len(d.items) for d in days)
