"""Player use cases: what a buyer does with a course they own.

Each takes the unit of work (state and outbox rows commit together), the store, the caller, and
"now" plus the buyer's zone (the clock is injected so tests can fix today).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

import msgspec

from coursemesh.chassis.db import UnitOfWork
from coursemesh.contracts.learning import (
    CourseCompleted,
    CourseRestarted,
    CourseStarted,
    WorkoutCompleted,
)
from coursemesh.learning.app.ports import (
    EMPTY_CURRICULUM,
    Completion,
    Course,
    CourseDetails,
    Curriculum,
    Enrollment,
    Entitlement,
    LibraryEntry,
    PlayerReader,
    PlayerStore,
    Workout,
)
from coursemesh.learning.domain.player import (
    Occurrence,
    check_start_date,
    curriculum_length,
    is_course_complete,
    occurrence_to_complete,
    occurrence_to_unmark,
    require_access,
    require_in_course,
    today_in,
)


class Clock(msgspec.Struct, frozen=True, kw_only=True):
    """The instant of the request and the buyer's zone: "today" for the player."""

    now: datetime
    zone: ZoneInfo

    @property
    def today(self) -> date:
        return today_in(self.zone, self.now)


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


class WorkoutView(msgspec.Struct, frozen=True, kw_only=True):
    workout_id: uuid.UUID
    workout: Workout | None
    occurrences: list[Occurrence]
    completed_item_ids: set[uuid.UUID]
    curriculum_version: int | None


class CompletionResult(msgspec.Struct, frozen=True, kw_only=True):
    """The occurrence a (un)mark was about and the enrollment after it."""

    occurrence: Occurrence | None
    completed: bool
    changed: bool
    enrollment: Enrollment
    completed_item_ids: set[uuid.UUID]
    total_items: int
    curriculum_version: int | None


async def _owned(store: PlayerStore, user_id: str, course_id: uuid.UUID) -> Entitlement:
    entitlement = await store.entitlement(user_id, course_id)
    require_access(None if entitlement is None else entitlement.access)
    assert entitlement is not None  # require_access raised otherwise
    return entitlement


async def _course(store: PlayerStore, entitlement: Entitlement) -> Course:
    return _or_empty(await store.course(entitlement.course_id), entitlement)


def _or_empty(course: Course | None, entitlement: Entitlement) -> Course:
    if course is None:
        # Owned but catalog's events have not arrived yet: an empty course, not an error.
        return Course(
            course_id=entitlement.course_id,
            organization_id=entitlement.organization_id,
            name=None,
            image_url=None,
            duration_days=None,
            status=None,
            curriculum_version=None,
            days=[],
        )
    return course


async def library(store: PlayerStore, user_id: str) -> list[LibraryEntry]:
    return await store.library(user_id)


async def open_course(
    reader: PlayerReader, user_id: str, course_id: uuid.UUID, clock: Clock
) -> CourseView:
    """The most frequent request of the suite: one read of everything, no transaction."""
    snapshot = await reader.snapshot(user_id, course_id)
    require_access(None if snapshot is None else snapshot.entitlement.access)
    assert snapshot is not None  # require_access raised otherwise
    entitlement = snapshot.entitlement
    course = snapshot.course
    if course is None:
        # Owned but catalog's events have not arrived yet: an empty course, not an error.
        course = CourseDetails(
            course_id=entitlement.course_id,
            organization_id=entitlement.organization_id,
            name=None,
            image_url=None,
            duration_days=None,
            status=None,
            curriculum_version=None,
        )
    curriculum = snapshot.curriculum or EMPTY_CURRICULUM
    return CourseView(
        entitlement=entitlement,
        course=course,
        curriculum=curriculum,
        length=curriculum_length(curriculum.days, course.duration_days),
        enrollment=snapshot.enrollment,
        completed_item_ids=snapshot.completed_item_ids,
        completed_workout_ids=snapshot.completed_workout_ids,
        today=clock.today,
    )


async def read_workout(
    store: PlayerStore, user_id: str, course_id: uuid.UUID, workout_id: uuid.UUID
) -> WorkoutView:
    entitlement = await _owned(store, user_id, course_id)
    course = await _course(store, entitlement)
    found = require_in_course(course.days, workout_id)
    done = {c.item_id for c in await store.completions(entitlement.entitlement_id)}
    return WorkoutView(
        workout_id=workout_id,
        workout=(await store.workouts({workout_id})).get(workout_id),
        occurrences=found,
        completed_item_ids=done & {o.item_id for o in found},
        curriculum_version=course.curriculum_version,
    )


def _started(entitlement: Entitlement, enrollment: Enrollment) -> CourseStarted:
    assert enrollment.start_date is not None
    return CourseStarted(
        entitlement_id=entitlement.entitlement_id,
        user_id=entitlement.user_id,
        course_id=entitlement.course_id,
        organization_id=entitlement.organization_id,
        start_date=enrollment.start_date,
        restart_count=enrollment.restart_count,
    )


async def start(
    uow: UnitOfWork,
    store: PlayerStore,
    user_id: str,
    course_id: uuid.UUID,
    start_date: date | None,
    clock: Clock,
) -> Enrollment:
    entitlement = await _owned(store, user_id, course_id)
    day0 = start_date or clock.today
    check_start_date(day0, clock.today)
    current = await store.lock_enrollment(entitlement)
    enrollment = msgspec.structs.replace(
        current,
        start_date=day0,
        completed_at=None,
        last_activity_at=clock.now,
        version=current.version + 1,
    )
    await store.save_enrollment(enrollment)
    uow.publish(
        _started(entitlement, enrollment),
        aggregate_id=entitlement.entitlement_id,
        aggregate_version=enrollment.version,
    )
    return enrollment


async def restart(
    uow: UnitOfWork, store: PlayerStore, user_id: str, course_id: uuid.UUID, clock: Clock
) -> Enrollment:
    entitlement = await _owned(store, user_id, course_id)
    current = await store.lock_enrollment(entitlement)
    # The finished run's completions go to history rather than being lost (the seed deletes them).
    await store.archive_completions(
        entitlement.entitlement_id, run=current.restart_count, reason="restart", now=clock.now
    )
    enrollment = msgspec.structs.replace(
        current,
        start_date=clock.today,
        completed_at=None,
        restart_count=current.restart_count + 1,
        last_activity_at=clock.now,
        version=current.version + 1,
    )
    await store.save_enrollment(enrollment)
    uow.publish(
        CourseRestarted(
            entitlement_id=entitlement.entitlement_id,
            user_id=entitlement.user_id,
            course_id=entitlement.course_id,
            organization_id=entitlement.organization_id,
            restart_count=enrollment.restart_count,
            start_date=clock.today,
        ),
        aggregate_id=entitlement.entitlement_id,
        aggregate_version=enrollment.version,
    )
    return enrollment


async def mark_complete(
    uow: UnitOfWork,
    store: PlayerStore,
    user_id: str,
    course_id: uuid.UUID,
    workout_id: uuid.UUID,
    day_offset: int | None,
    clock: Clock,
) -> CompletionResult:
    entitlement = await _owned(store, user_id, course_id)
    course = await _course(store, entitlement)
    current = await store.lock_enrollment(entitlement)
    done = {c.item_id for c in await store.completions(entitlement.entitlement_id)}
    occurrence = occurrence_to_complete(course.days, workout_id, done, day_offset)
    version = current.version
    changed = await store.add_completion(
        entitlement.entitlement_id,
        Completion(
            item_id=occurrence.item_id,
            workout_id=workout_id,
            day_offset=occurrence.day_offset,
            curriculum_version=course.curriculum_version or 0,
            completed_at=clock.now,
        ),
    )
    if changed:
        done.add(occurrence.item_id)
        version += 1
        uow.publish(
            WorkoutCompleted(
                entitlement_id=entitlement.entitlement_id,
                user_id=entitlement.user_id,
                course_id=entitlement.course_id,
                organization_id=entitlement.organization_id,
                item_id=occurrence.item_id,
                workout_id=workout_id,
                day_offset=occurrence.day_offset,
                curriculum_version=course.curriculum_version or 0,
                completed_at=clock.now,
            ),
            aggregate_id=entitlement.entitlement_id,
            aggregate_version=version,
        )
    completed_at = current.completed_at
    if completed_at is None and is_course_complete(course.days, done):
        completed_at = clock.now
        version += 1
        uow.publish(
            CourseCompleted(
                entitlement_id=entitlement.entitlement_id,
                user_id=entitlement.user_id,
                course_id=entitlement.course_id,
                organization_id=entitlement.organization_id,
                completed_at=completed_at,
            ),
            aggregate_id=entitlement.entitlement_id,
            aggregate_version=version,
        )
    enrollment = msgspec.structs.replace(
        current, completed_at=completed_at, last_activity_at=clock.now, version=version
    )
    await store.save_enrollment(enrollment)
    return CompletionResult(
        occurrence=occurrence,
        completed=True,
        changed=changed,
        enrollment=enrollment,
        completed_item_ids=done,
        total_items=sum(len(d.items) for d in course.days),
        curriculum_version=course.curriculum_version,
    )


async def unmark_complete(
    uow: UnitOfWork,
    store: PlayerStore,
    user_id: str,
    course_id: uuid.UUID,
    workout_id: uuid.UUID,
    day_offset: int | None,
    clock: Clock,
) -> CompletionResult:
    entitlement = await _owned(store, user_id, course_id)
    course = await _course(store, entitlement)
    current = await store.lock_enrollment(entitlement)
    done = {c.item_id for c in await store.completions(entitlement.entitlement_id)}
    occurrence = occurrence_to_unmark(course.days, workout_id, done, day_offset)
    changed = occurrence is not None and await store.remove_completion(
        entitlement.entitlement_id, occurrence.item_id
    )
    if occurrence is not None:
        done.discard(occurrence.item_id)
    # Re-derived: an unmark that removed an item always clears it, as in the seed.
    completed_at = current.completed_at if is_course_complete(course.days, done) else None
    enrollment = msgspec.structs.replace(
        current, completed_at=completed_at, last_activity_at=clock.now
    )
    await store.save_enrollment(enrollment)
    return CompletionResult(
        occurrence=occurrence,
        completed=False,
        changed=changed,
        enrollment=enrollment,
        completed_item_ids=done,
        total_items=sum(len(d.items) for d in course.days),
        curriculum_version=course.curriculum_version,
    )
