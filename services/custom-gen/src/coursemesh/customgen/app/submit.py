"""``submit-custom-course``: the buyer's intake turns an unused purchase into a custom course
whose generation job starts at once."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import sqlalchemy as sa

from coursemesh.chassis.db import Database
from coursemesh.chassis.errors import BadRequest, Conflict, NotFound
from coursemesh.contracts.customgen import CustomCourseRequested
from coursemesh.customgen.adapters.tables import custom_courses, purchases
from coursemesh.customgen.app.course_data import checked
from coursemesh.customgen.app.generation import enqueue_job
from coursemesh.customgen.domain.course import initial_data
from coursemesh.customgen.domain.intake import Intake


def course_title(offer_title: str, intake: Intake) -> str:
    return f"{offer_title} for {intake.preferred_name}"


def course_description(intake: Intake) -> str:
    sessions = "session" if intake.session_count == 1 else "sessions"
    return (
        f"A personalised hypnotherapy course of {intake.session_count} {sessions} "
        f"for {intake.preferred_name}. Goal: {intake.goal}"
    )


async def submit_custom_course(
    db: Database,
    *,
    user_id: str,
    purchase_id: uuid.UUID,
    intake: Intake,
    script_writer: str,
    wake_worker: Callable[[], None] = lambda: None,
) -> uuid.UUID:
    intake = intake.normalised()
    if len(intake.goal) < 3 or not intake.preferred_name:
        raise BadRequest("goal and preferredName must not be blank", code="INTAKE_INVALID")
    async with db.unit_of_work() as uow:
        purchase = (
            await uow.session.execute(
                sa.select(purchases).where(purchases.c.id == purchase_id).with_for_update()
            )
        ).first()
        # A purchase of someone else is indistinguishable from a missing one.
        if purchase is None or purchase.user_id != user_id:
            raise NotFound("No such purchase", code="PURCHASE_NOT_FOUND")
        if purchase.status != "awaiting_intake":
            raise Conflict(
                "This purchase already has its custom course",
                code="PURCHASE_ALREADY_USED",
                extra={"customCourseId": str(purchase.custom_course_id)},
            )
        course_id = uuid.uuid4()
        title = course_title(purchase.offer_title, intake)
        description = course_description(intake)
        stored = checked(
            initial_data(
                course_code=purchase.course_code,
                title=title,
                description=description,
                intake=intake,
                script_writer=script_writer,
            )
        )
        await uow.session.execute(
            sa.insert(custom_courses).values(
                id=course_id,
                user_id=user_id,
                organization_id=purchase.organization_id,
                purchase_id=purchase.id,
                course_code=purchase.course_code,
                title=title,
                description=description,
                data=stored.text,
                checksum=stored.checksum,
                file_size_bytes=stored.size_bytes,
                status="generating",
                version=1,
            )
        )
        await uow.session.execute(
            sa.update(purchases)
            .where(purchases.c.id == purchase.id)
            .values(status="submitted", custom_course_id=course_id, updated_at=sa.func.now())
        )
        await enqueue_job(uow.session, course_id=course_id, kind="generate", step="write_scripts")
        uow.publish(
            CustomCourseRequested(
                custom_course_id=course_id,
                user_id=user_id,
                organization_id=purchase.organization_id,
                purchase_id=purchase.id,
                course_code=purchase.course_code,
            ),
            aggregate_id=course_id,
            aggregate_version=1,
        )
        uow.after_commit(wake_worker)
    return course_id
