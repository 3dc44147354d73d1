"""``submit-custom-course``: the buyer's intake turns an unused purchase into a custom course
whose generation job starts at once."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from coursemesh.contracts.customgen import CustomCourseRequested
from coursemesh.customgen.app.course_data import checked
from coursemesh.customgen.app.ports import CourseStore, NewCourse
from coursemesh.customgen.domain.course import course_description, course_title, initial_data
from coursemesh.customgen.domain.intake import Intake
from coursemesh.customgen.domain.purchase import decide_submission, submission_refusal


async def submit_custom_course(
    store: CourseStore,
    *,
    user_id: str,
    purchase_id: uuid.UUID,
    intake: Intake,
    script_writer: str,
    wake_worker: Callable[[], None] = lambda: None,
) -> uuid.UUID:
    intake = intake.normalised()
    async with store.transaction() as tx:
        purchase = await tx.lock_purchase(purchase_id)
        outcome = decide_submission(purchase, user_id, intake)
        if outcome != "accepted" or purchase is None:
            raise submission_refusal(outcome, purchase)
        course_id = uuid.uuid4()
        title = course_title(purchase.offer_title, intake)
        description = course_description(intake)
        data = initial_data(
            course_code=purchase.course_code,
            title=title,
            description=description,
            intake=intake,
            script_writer=script_writer,
        )
        await tx.add_course(
            NewCourse(
                id=course_id,
                user_id=user_id,
                organization_id=purchase.organization_id,
                purchase_id=purchase.id,
                course_code=purchase.course_code,
                title=title,
                description=description,
                data=checked(data),
            )
        )
        await tx.mark_purchase_submitted(purchase.id, course_id)
        await tx.add_job(course_id, "generate", "write_scripts")
        tx.publish(
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
        tx.after_commit(wake_worker)
    return course_id
