"""``manage-regen-requests``: buyers ask for one audio file to be regenerated; staff of the
course's organization approve (a regeneration job starts) or reject, announced by a
``customgen.regen_request.decided.v1`` event of the course."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from coursemesh.chassis.errors import NotFound
from coursemesh.chassis.staff import require_staff
from coursemesh.contracts.customgen import RegenRequestDecided
from coursemesh.contracts.types import RegenDecision
from coursemesh.customgen.app.ports import CourseStore, NewRegenRequest, RegenRequestTaken
from coursemesh.customgen.app.views import RegenRequestView
from coursemesh.customgen.domain.regen import (
    RegenStatus,
    accept_regen_request,
    already_open,
    decide_regen_request,
    decision_refusal,
    regen_refusal,
)


async def create_regen_request(
    store: CourseStore,
    *,
    user_id: str,
    course_id: uuid.UUID,
    audio_id: uuid.UUID,
    reason: str,
    daily_limit: int,
) -> RegenRequestView:
    async with store.transaction() as tx:
        # One buyer's requests one at a time, so two at once cannot both slip under the limit.
        await tx.lock_buyer(user_id)
        course = await tx.course_of_buyer(user_id, course_id)
        outcome = accept_regen_request(
            course,
            audio_id,
            requests_last_24h=await tx.regen_requests_last_24h(user_id),
            daily_limit=daily_limit,
        )
        if outcome != "accepted" or course is None:
            raise regen_refusal(outcome, daily_limit=daily_limit)
        try:
            return await tx.add_regen_request(
                NewRegenRequest(
                    id=uuid.uuid4(),
                    custom_course_id=course.id,
                    user_id=user_id,
                    organization_id=course.organization_id,
                    audio_id=audio_id,
                    reason=reason,
                )
            )
        except RegenRequestTaken:
            raise already_open() from None


async def list_my_regen_requests(
    store: CourseStore, user_id: str, course_id: uuid.UUID
) -> list[RegenRequestView]:
    async with store.reading() as reader:
        if not await reader.owns_course(user_id, course_id):
            raise NotFound("No such custom course", code="CUSTOM_COURSE_NOT_FOUND")
        return await reader.regen_requests_of_course(course_id)


async def list_org_regen_requests(
    store: CourseStore,
    *,
    staff_user_id: str,
    organization_id: uuid.UUID,
    status: RegenStatus | None,
) -> list[RegenRequestView]:
    async with store.reading() as reader:
        await require_staff(reader, organization_id, staff_user_id)
        return await reader.regen_requests_of_organization(organization_id, status)


async def decide_on_regen_request(
    store: CourseStore,
    *,
    organization_id: uuid.UUID,
    request_id: uuid.UUID,
    staff_user_id: str,
    approve: bool,
    note: str | None,
    wake_worker: Callable[[], None] = lambda: None,
) -> RegenRequestView:
    async with store.transaction() as tx:
        await require_staff(tx, organization_id, staff_user_id)
        request = await tx.lock_regen_request(organization_id, request_id)
        status = request.status if request else None
        outcome = decide_regen_request(status)
        if request is None or outcome != "decided":
            raise decision_refusal(outcome, status)
        decision: RegenDecision = "approved" if approve else "rejected"
        decided = await tx.record_decision(request_id, decision, staff_user_id, note)
        if approve:
            await tx.add_job(request.custom_course_id, "regenerate", "synthesize", request_id)
            tx.after_commit(wake_worker)
        # An event of the course: its next version keeps the decision ordered before the
        # regeneration's own events, which the swap numbers under the same row lock.
        version = await tx.bump_course_version(request.custom_course_id)
        tx.publish(
            RegenRequestDecided(
                regen_request_id=request.id,
                custom_course_id=request.custom_course_id,
                organization_id=request.organization_id,
                user_id=request.user_id,
                audio_id=request.audio_id,
                decision=decision,
                decided_by=staff_user_id,
                note=note,
            ),
            aggregate_id=request.custom_course_id,
            aggregate_version=version,
        )
        return decided
