"""Pause, resume and the staff unlock of an enrollment: by the buyer (``/me/courses/:id/…``)
or by staff of the course's organization for one buyer.

Each runs in one transaction with the enrollment row locked, so two pauses at once cannot both
pass the checks; the events commit with the change.
"""

from __future__ import annotations

import uuid

import msgspec

from coursemesh.chassis.errors import NotFound
from coursemesh.chassis.staff import require_staff
from coursemesh.contracts.learning import EnrollmentPaused, EnrollmentResumed, EnrollmentUnlocked
from coursemesh.learning.app.player import owned_course
from coursemesh.learning.app.ports import PlayerStorage, PlayerTransaction
from coursemesh.learning.domain.model import Clock, Course, Enrollment, Entitlement, Pause
from coursemesh.learning.domain.player import owned
from coursemesh.learning.domain.schedule import (
    Schedule,
    decide_pause,
    decide_resume,
    decide_unlock,
    schedule,
)


class PauseOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """The enrollment after a pause, a resume or an unlock, with every pause and where the
    buyer stands today."""

    entitlement: Entitlement
    enrollment: Enrollment
    pauses: list[Pause]
    schedule: Schedule


def _not_found() -> NotFound:
    # Non-staff, other organizations' courses and their buyers: the same 404 as the drill-down.
    return NotFound("No such course in this organization", code="COURSE_NOT_FOUND")


async def _pause(
    tx: PlayerTransaction, entitlement: Entitlement, by: str, clock: Clock
) -> PauseOutcome:
    store = tx.store
    course = await owned_course(store, entitlement)
    current = await store.lock_enrollment(entitlement)
    pauses = await store.pauses(entitlement.entitlement_id)
    pause = decide_pause(course.details, current, pauses, clock.today, clock.now, by)
    await store.add_pause(entitlement.entitlement_id, pause)
    enrollment = msgspec.structs.replace(current, version=current.version + 1)
    await store.save_enrollment(enrollment)
    await store.touch_library(entitlement.user_id, entitlement.course_id)
    tx.events.publish(
        EnrollmentPaused(
            entitlement_id=entitlement.entitlement_id,
            user_id=entitlement.user_id,
            course_id=entitlement.course_id,
            organization_id=entitlement.organization_id,
            paused_on=pause.paused_on,
            paused_by=by,
            run=pause.run,
        ),
        aggregate_id=entitlement.entitlement_id,
        aggregate_version=enrollment.version,
    )
    return _outcome(course, entitlement, enrollment, [*pauses, pause], clock)


async def _resume(
    tx: PlayerTransaction, entitlement: Entitlement, by: str, clock: Clock
) -> PauseOutcome:
    store = tx.store
    course = await owned_course(store, entitlement)
    current = await store.lock_enrollment(entitlement)
    pauses = await store.pauses(entitlement.entitlement_id)
    closed = decide_resume(course.details, current, pauses, clock.today, clock.now, by)
    await store.close_pause(entitlement.entitlement_id, closed)
    enrollment = msgspec.structs.replace(current, version=current.version + 1)
    await store.save_enrollment(enrollment)
    await store.touch_library(entitlement.user_id, entitlement.course_id)
    after = [closed if p.run == closed.run and p.resumed_on is None else p for p in pauses]
    outcome = _outcome(course, entitlement, enrollment, after, clock)
    assert closed.resumed_on is not None
    assert closed.days is not None
    tx.events.publish(
        EnrollmentResumed(
            entitlement_id=entitlement.entitlement_id,
            user_id=entitlement.user_id,
            course_id=entitlement.course_id,
            organization_id=entitlement.organization_id,
            paused_on=closed.paused_on,
            resumed_on=closed.resumed_on,
            paused_days=closed.days,
            total_paused_days=outcome.schedule.paused_days,
            resumed_by=by,
            run=closed.run,
        ),
        aggregate_id=entitlement.entitlement_id,
        aggregate_version=enrollment.version,
    )
    return outcome


def _outcome(
    course: Course,
    entitlement: Entitlement,
    enrollment: Enrollment,
    pauses: list[Pause],
    clock: Clock,
) -> PauseOutcome:
    return PauseOutcome(
        entitlement=entitlement,
        enrollment=enrollment,
        pauses=pauses,
        schedule=schedule(course.details, enrollment, pauses, clock.today),
    )


# --- the buyer -----------------------------------------------------------------------------------


async def pause(
    storage: PlayerStorage, user_id: str, course_id: uuid.UUID, clock: Clock
) -> PauseOutcome:
    async with storage.transaction() as tx:
        entitlement = owned(await tx.store.entitlement(user_id, course_id))
        return await _pause(tx, entitlement, user_id, clock)


async def resume(
    storage: PlayerStorage, user_id: str, course_id: uuid.UUID, clock: Clock
) -> PauseOutcome:
    async with storage.transaction() as tx:
        entitlement = owned(await tx.store.entitlement(user_id, course_id))
        return await _resume(tx, entitlement, user_id, clock)


# --- staff for one buyer -------------------------------------------------------------------------


async def _buyer(
    tx: PlayerTransaction,
    staff_user_id: str,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    entitlement_id: uuid.UUID,
) -> Entitlement:
    """The buyer's entitlement, when the caller is staff of the course's organization."""
    store = tx.store
    course = await store.course(course_id)
    if course is None or course.details.organization_id != organization_id:
        raise _not_found()
    await require_staff(store, organization_id, staff_user_id, refusal=_not_found())
    entitlement = await store.entitlement_by_id(entitlement_id)
    if entitlement is None or entitlement.course_id != course_id:
        raise NotFound("No such buyer of this course", code="ENROLLMENT_NOT_FOUND")
    return entitlement


async def staff_pause(
    storage: PlayerStorage,
    staff_user_id: str,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    entitlement_id: uuid.UUID,
    clock: Clock,
) -> PauseOutcome:
    async with storage.transaction() as tx:
        entitlement = await _buyer(tx, staff_user_id, organization_id, course_id, entitlement_id)
        return await _pause(tx, entitlement, staff_user_id, clock)


async def staff_resume(
    storage: PlayerStorage,
    staff_user_id: str,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    entitlement_id: uuid.UUID,
    clock: Clock,
) -> PauseOutcome:
    async with storage.transaction() as tx:
        entitlement = await _buyer(tx, staff_user_id, organization_id, course_id, entitlement_id)
        return await _resume(tx, entitlement, staff_user_id, clock)


async def unlock(
    storage: PlayerStorage,
    staff_user_id: str,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    entitlement_id: uuid.UUID,
    reason: str,
    clock: Clock,
) -> PauseOutcome:
    async with storage.transaction() as tx:
        entitlement = await _buyer(tx, staff_user_id, organization_id, course_id, entitlement_id)
        store = tx.store
        course = await owned_course(store, entitlement)
        current = await store.lock_enrollment(entitlement)
        enrollment = decide_unlock(current, staff_user_id, reason, clock.now)
        await store.save_enrollment(enrollment)
        await store.touch_library(entitlement.user_id, entitlement.course_id)
        tx.events.publish(
            EnrollmentUnlocked(
                entitlement_id=entitlement.entitlement_id,
                user_id=entitlement.user_id,
                course_id=entitlement.course_id,
                organization_id=entitlement.organization_id,
                unlocked_at=clock.now,
                unlocked_by=staff_user_id,
                reason=reason,
                run=enrollment.restart_count,
            ),
            aggregate_id=entitlement.entitlement_id,
            aggregate_version=enrollment.version,
        )
        pauses = await store.pauses(entitlement.entitlement_id)
        return _outcome(course, entitlement, enrollment, pauses, clock)
