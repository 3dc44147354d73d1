"""``manage-regen-requests``: buyers ask for one audio file to be regenerated; staff of the
course's organization approve (a regeneration job starts) or reject."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from coursemesh.chassis.db import Database
from coursemesh.chassis.errors import Conflict, NotFound, TooManyRequests
from coursemesh.chassis.memberships import is_staff
from coursemesh.customgen.adapters.tables import (
    custom_courses,
    memberships,
    regen_requests,
)
from coursemesh.customgen.app.generation import enqueue_job
from coursemesh.customgen.domain.course import find_audio


class RegenRequestView(msgspec.Struct, rename="camel", kw_only=True):
    id: uuid.UUID
    custom_course_id: uuid.UUID
    user_id: str
    organization_id: uuid.UUID
    audio_id: uuid.UUID
    reason: str
    status: str
    decided_by: str | None
    decision_note: str | None
    decided_at: datetime | None
    completed_at: datetime | None
    created_at: datetime


def _view(row: Any) -> RegenRequestView:
    return RegenRequestView(**{f: getattr(row, f) for f in RegenRequestView.__struct_fields__})


async def create_regen_request(
    db: Database,
    *,
    user_id: str,
    course_id: uuid.UUID,
    audio_id: uuid.UUID,
    reason: str,
    daily_limit: int,
) -> RegenRequestView:
    async with db.unit_of_work() as uow:
        session = uow.session
        # Serialise one buyer's requests so two at once cannot both slip under the limit.
        await session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(user_id))))
        course = (
            await session.execute(
                sa.select(
                    custom_courses.c.id,
                    custom_courses.c.organization_id,
                    custom_courses.c.status,
                    custom_courses.c.data,
                ).where(custom_courses.c.id == course_id, custom_courses.c.user_id == user_id)
            )
        ).first()
        if course is None:
            raise NotFound("No such custom course", code="CUSTOM_COURSE_NOT_FOUND")
        if course.status != "ready":
            raise Conflict("The course is not ready yet", code="COURSE_NOT_READY")
        if find_audio(json.loads(course.data), str(audio_id)) is None:
            raise NotFound("No such audio file in this course", code="AUDIO_NOT_FOUND")
        today = (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(regen_requests)
                .where(
                    regen_requests.c.user_id == user_id,
                    regen_requests.c.created_at > sa.func.now() - sa.text("interval '1 day'"),
                )
            )
        ).scalar_one()
        if today >= daily_limit:
            raise TooManyRequests(
                f"At most {daily_limit} regen requests per 24 hours", code="REGEN_DAILY_LIMIT"
            )
        request_id = uuid.uuid4()
        try:
            async with session.begin_nested():
                row = (
                    await session.execute(
                        sa.insert(regen_requests)
                        .values(
                            id=request_id,
                            custom_course_id=course.id,
                            user_id=user_id,
                            organization_id=course.organization_id,
                            audio_id=audio_id,
                            reason=reason,
                            status="open",
                        )
                        .returning(regen_requests)
                    )
                ).one()
        except IntegrityError:
            raise Conflict(
                "This audio file already has an open regen request", code="REGEN_ALREADY_OPEN"
            ) from None
        return _view(row)


async def list_my_regen_requests(
    db: Database, user_id: str, course_id: uuid.UUID
) -> list[RegenRequestView]:
    async with db.engine.connect() as conn:
        owner = (
            await conn.execute(
                sa.select(custom_courses.c.id).where(
                    custom_courses.c.id == course_id, custom_courses.c.user_id == user_id
                )
            )
        ).first()
        if owner is None:
            raise NotFound("No such custom course", code="CUSTOM_COURSE_NOT_FOUND")
        rows = await conn.execute(
            sa.select(regen_requests)
            .where(regen_requests.c.custom_course_id == course_id)
            .order_by(regen_requests.c.created_at.desc())
        )
        return [_view(r) for r in rows]


async def require_staff(db: Database, organization_id: uuid.UUID, user_id: str) -> None:
    """Anyone but staff of the organization (a plain member, staff of another organization, a
    stranger) gets the 404 commerce gives on its staff routes: a refusal that differed from
    "not found" would tell an outsider which organizations exist and which ids are theirs."""
    async with db.engine.connect() as conn:
        staff = await is_staff(conn, memberships, organization_id, user_id)
    if not staff:
        raise NotFound("Not found", code="NOT_FOUND")


async def list_org_regen_requests(
    db: Database, organization_id: uuid.UUID, status: str | None
) -> list[RegenRequestView]:
    query = sa.select(regen_requests).where(regen_requests.c.organization_id == organization_id)
    if status:
        query = query.where(regen_requests.c.status == status)
    async with db.engine.connect() as conn:
        rows = await conn.execute(query.order_by(regen_requests.c.created_at))
        return [_view(r) for r in rows]


async def decide_regen_request(
    db: Database,
    *,
    organization_id: uuid.UUID,
    request_id: uuid.UUID,
    staff_user_id: str,
    approve: bool,
    note: str | None,
    wake_worker: Callable[[], None] = lambda: None,
) -> RegenRequestView:
    async with db.unit_of_work() as uow:
        session = uow.session
        request = (
            await session.execute(
                sa.select(regen_requests)
                .where(
                    regen_requests.c.id == request_id,
                    regen_requests.c.organization_id == organization_id,
                )
                .with_for_update()
            )
        ).first()
        if request is None:
            raise NotFound("No such regen request", code="REGEN_REQUEST_NOT_FOUND")
        if request.status != "open":
            raise Conflict(
                f"This regen request is already {request.status}", code="REGEN_ALREADY_DECIDED"
            )
        row = (
            await session.execute(
                sa.update(regen_requests)
                .where(regen_requests.c.id == request_id)
                .values(
                    status="approved" if approve else "rejected",
                    decided_by=staff_user_id,
                    decision_note=note,
                    decided_at=sa.func.now(),
                )
                .returning(regen_requests)
            )
        ).one()
        if approve:
            await enqueue_job(
                session,
                course_id=request.custom_course_id,
                kind="regenerate",
                step="synthesize",
                regen_request_id=request_id,
            )
            uow.after_commit(wake_worker)
        return _view(row)
