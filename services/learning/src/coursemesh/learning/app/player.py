"""Player use cases: what a buyer does with a course they own.

Each loads the state through the storage port, asks the domain what to do, and stores the
answer with the events it publishes (one transaction). The caller passes the clock: the
instant of the request and the buyer's zone.
"""

from __future__ import annotations

import uuid
from datetime import date

import msgspec

from coursemesh.contracts.learning import (
    CourseCompleted,
    CourseRestarted,
    CourseStarted,
    WorkoutCompleted,
)
from coursemesh.learning.app.ports import LibraryEntry, PlayerStorage, PlayerStore
from coursemesh.learning.domain.certificate import issue
from coursemesh.learning.domain.model import (
    Clock,
    Completion,
    Course,
    Enrollment,
    Entitlement,
)
from coursemesh.learning.domain.player import (
    CompletionOutcome,
    CourseView,
    WorkoutView,
    after_mark,
    after_unmark,
    course_or_unknown,
    course_view,
    first_day,
    occurrence_to_complete,
    occurrence_to_unmark,
    owned,
    restart_run,
    start_run,
    workout_view,
)
from coursemesh.learning.domain.schedule import DAILY, close_on_restart, require_day_open, schedule
from coursemesh.learning.domain.sync import require_not_superseded


async def owned_course(store: PlayerStore, entitlement: Entitlement) -> Course:
    """The course an entitlement opens; empty while its content has not arrived."""
    course = await store.course(entitlement.course_id)
    if course is not None:
        return course
    return Course(details=course_or_unknown(None, entitlement), days=[])


async def _completed(store: PlayerStore, entitlement: Entitlement) -> set[uuid.UUID]:
    return {c.item_id for c in await store.completions(entitlement.entitlement_id)}


async def _require_open(
    store: PlayerStore, course: Course, current: Enrollment, day_offset: int, clock: Clock
) -> None:
    """Refuse (409 ``DAY_LOCKED``) a change on a day a daily release has not opened."""
    if course.details.release_mode != DAILY:
        return  # the pauses are read only when a day can be locked
    pauses = await store.pauses(current.entitlement_id)
    require_day_open(schedule(course.details, current, pauses, clock.today), day_offset)


async def _require_latest(
    store: PlayerStore, entitlement: Entitlement, item_id: uuid.UUID, clock: Clock
) -> None:
    """The latest change of an item wins (see :func:`require_not_superseded`)."""
    last = await store.item_change(entitlement.entitlement_id, item_id)
    require_not_superseded(last, clock.now)


async def library(storage: PlayerStorage, user_id: str) -> list[LibraryEntry]:
    async with storage.transaction() as tx:
        return await tx.store.library(user_id)


async def open_course(
    storage: PlayerStorage, user_id: str, course_id: uuid.UUID, clock: Clock
) -> CourseView:
    """The most frequent request of the suite: one read of everything, no transaction."""
    async with storage.reading() as reader:
        snapshot = await reader.snapshot(user_id, course_id)
    return course_view(snapshot, clock.today, clock.zone)


async def read_workout(
    storage: PlayerStorage, user_id: str, course_id: uuid.UUID, workout_id: uuid.UUID, clock: Clock
) -> WorkoutView:
    """The same one read as :func:`open_course`: the schedule decides which days show it."""
    async with storage.reading() as reader:
        snapshot = await reader.snapshot(user_id, course_id)
    return workout_view(course_view(snapshot, clock.today, clock.zone), workout_id)


async def start(
    storage: PlayerStorage,
    user_id: str,
    course_id: uuid.UUID,
    start_date: date | None,
    clock: Clock,
) -> Enrollment:
    async with storage.transaction() as tx:
        store = tx.store
        entitlement = owned(await store.entitlement(user_id, course_id))
        day0 = first_day(start_date, clock.today)  # refused before anything is locked
        enrollment = start_run(await store.lock_enrollment(entitlement), day0, clock.now)
        await store.save_enrollment(enrollment)
        await store.touch_library(user_id, course_id)
        assert enrollment.start_date is not None
        tx.events.publish(
            CourseStarted(
                entitlement_id=entitlement.entitlement_id,
                user_id=entitlement.user_id,
                course_id=entitlement.course_id,
                organization_id=entitlement.organization_id,
                start_date=enrollment.start_date,
                restart_count=enrollment.restart_count,
            ),
            aggregate_id=entitlement.entitlement_id,
            aggregate_version=enrollment.version,
        )
    return enrollment


async def restart(
    storage: PlayerStorage, user_id: str, course_id: uuid.UUID, clock: Clock
) -> Enrollment:
    async with storage.transaction() as tx:
        store = tx.store
        entitlement = owned(await store.entitlement(user_id, course_id))
        current = await store.lock_enrollment(entitlement)
        decided = restart_run(current, clock.today, clock.now)
        ended = close_on_restart(
            await store.pauses(entitlement.entitlement_id),
            current.restart_count,
            clock.today,
            clock.now,
        )
        if ended is not None:
            await store.close_pause(entitlement.entitlement_id, ended)
        await store.archive_completions(
            entitlement.entitlement_id, run=decided.archived_run, reason="restart", now=clock.now
        )
        # A restart is a change of every item: a device's offline change made before it
        # belongs to the archived run, so it is refused as superseded, not applied to this one.
        course = await owned_course(store, entitlement)
        items = [item.item_id for day in course.days for item in day.items]
        await store.record_item_changes(entitlement.entitlement_id, items, clock.now, False)
        enrollment = decided.enrollment
        await store.save_enrollment(enrollment)
        await store.touch_library(user_id, course_id)
        assert enrollment.start_date is not None
        tx.events.publish(
            CourseRestarted(
                entitlement_id=entitlement.entitlement_id,
                user_id=entitlement.user_id,
                course_id=entitlement.course_id,
                organization_id=entitlement.organization_id,
                restart_count=enrollment.restart_count,
                start_date=enrollment.start_date,
            ),
            aggregate_id=entitlement.entitlement_id,
            aggregate_version=enrollment.version,
        )
    return enrollment


async def mark_complete(
    storage: PlayerStorage,
    user_id: str,
    course_id: uuid.UUID,
    workout_id: uuid.UUID,
    day_offset: int | None,
    clock: Clock,
    learner: str | None = None,
    *,
    offline: bool = False,
) -> CompletionOutcome:
    """``learner``: the learner's name (the token's ``name`` claim), printed on the certificate a
    completion of the course issues. ``offline``: a change a device made at ``clock.now``,
    refused (409 ``SUPERSEDED``) when the item changed later."""
    async with storage.transaction() as tx:
        store = tx.store
        entitlement = owned(await store.entitlement(user_id, course_id))
        course = await owned_course(store, entitlement)
        current = await store.lock_enrollment(entitlement)
        completed = await _completed(store, entitlement)
        occurrence = occurrence_to_complete(course.days, workout_id, completed, day_offset)
        await _require_open(store, course, current, occurrence.day_offset, clock)
        if offline:
            await _require_latest(store, entitlement, occurrence.item_id, clock)
        completion = Completion(
            item_id=occurrence.item_id,
            workout_id=workout_id,
            day_offset=occurrence.day_offset,
            curriculum_version=course.details.curriculum_version or 0,
            completed_at=clock.now,
        )
        recorded = await store.add_completion(entitlement.entitlement_id, completion)
        if recorded:
            await store.record_item_changes(
                entitlement.entitlement_id, [occurrence.item_id], clock.now, completed=True
            )
        outcome = after_mark(current, course, completed, occurrence, recorded, clock.now)
        if outcome.workout_completed_version is not None:
            tx.events.publish(
                WorkoutCompleted(
                    entitlement_id=entitlement.entitlement_id,
                    user_id=entitlement.user_id,
                    course_id=entitlement.course_id,
                    organization_id=entitlement.organization_id,
                    item_id=completion.item_id,
                    workout_id=completion.workout_id,
                    day_offset=completion.day_offset,
                    curriculum_version=completion.curriculum_version,
                    completed_at=completion.completed_at,
                ),
                aggregate_id=entitlement.entitlement_id,
                aggregate_version=outcome.workout_completed_version,
            )
        completed_at = outcome.enrollment.completed_at
        if outcome.course_completed_version is not None and completed_at is not None:
            # Once per run: a run completed again after an unmark finds its certificate.
            certificate = await store.issue_certificate(
                issue(
                    certificate_id=uuid.uuid4(),  # random: the public link must not be guessable
                    entitlement_id=entitlement.entitlement_id,
                    run=outcome.enrollment.restart_count,
                    user_id=entitlement.user_id,
                    course_id=entitlement.course_id,
                    organization_id=entitlement.organization_id,
                    learner=learner,
                    course_name=course.details.name,
                    organization=await store.organization(entitlement.organization_id),
                    completed_on=clock.today,
                    now=clock.now,
                )
            )
            tx.events.publish(
                CourseCompleted(
                    entitlement_id=entitlement.entitlement_id,
                    user_id=entitlement.user_id,
                    course_id=entitlement.course_id,
                    organization_id=entitlement.organization_id,
                    completed_at=completed_at,
                    certificate_id=certificate.certificate_id,
                ),
                aggregate_id=entitlement.entitlement_id,
                aggregate_version=outcome.course_completed_version,
            )
            outcome = msgspec.structs.replace(outcome, certificate=certificate)
        await store.save_enrollment(outcome.enrollment)
        await store.touch_library(user_id, course_id)
    return outcome


async def unmark_complete(
    storage: PlayerStorage,
    user_id: str,
    course_id: uuid.UUID,
    workout_id: uuid.UUID,
    day_offset: int | None,
    clock: Clock,
    *,
    offline: bool = False,
) -> CompletionOutcome:
    """``offline``: as for :func:`mark_complete`."""
    async with storage.transaction() as tx:
        store = tx.store
        entitlement = owned(await store.entitlement(user_id, course_id))
        course = await owned_course(store, entitlement)
        current = await store.lock_enrollment(entitlement)
        completed = await _completed(store, entitlement)
        occurrence = occurrence_to_unmark(course.days, workout_id, completed, day_offset)
        if occurrence is not None:
            await _require_open(store, course, current, occurrence.day_offset, clock)
            if offline:
                await _require_latest(store, entitlement, occurrence.item_id, clock)
        removed = occurrence is not None and await store.remove_completion(
            entitlement.entitlement_id, occurrence.item_id
        )
        if removed and occurrence is not None:
            await store.record_item_changes(
                entitlement.entitlement_id, [occurrence.item_id], clock.now, completed=False
            )
        outcome = after_unmark(current, course, completed, occurrence, removed, clock.now)
        await store.save_enrollment(outcome.enrollment)
        await store.touch_library(user_id, course_id)
    return outcome
