"""Use cases for courses (staff only): create, edit, set a day of the curriculum, publish,
archive, and the staff views."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from coursemesh.catalog.app.ports import CatalogStore, CatalogWriter
from coursemesh.catalog.app.publishing import publish
from coursemesh.catalog.app.views import CourseView
from coursemesh.catalog.domain import course as rules
from coursemesh.catalog.domain.course import CourseEdit, CourseOutcome
from coursemesh.catalog.domain.roles import require_staff
from coursemesh.contracts.types import PreviewType


async def _view(tx: CatalogWriter, organization_id: uuid.UUID, course_id: uuid.UUID) -> CourseView:
    (view,) = await tx.course_views(organization_id, course_id)
    return view


async def _save(tx: CatalogWriter, outcome: CourseOutcome) -> CourseView:
    await tx.save_course(outcome.course)
    publish(tx, outcome.events)
    return await _view(tx, outcome.course.organization_id, outcome.course.id)


async def create_course(
    store: CatalogStore,
    *,
    actor: str,
    organization_id: uuid.UUID,
    name: str,
    description: str | None,
    image_url: str | None,
    duration_days: int,
    preview_type: PreviewType,
) -> CourseView:
    """A program (delivery mode course, type remote) and its draft config, together."""
    async with store.transaction() as tx:
        require_staff(await tx.role(organization_id, actor))
        outcome = rules.create_course(
            course_id=uuid.uuid4(),
            organization_id=organization_id,
            name=name,
            description=description,
            image_url=image_url,
            duration_days=duration_days,
            preview_type=preview_type,
            now=datetime.now(UTC),
        )
        await tx.add_course(outcome.course)
        publish(tx, outcome.events)
        return await _view(tx, organization_id, outcome.course.id)


async def update_course(
    store: CatalogStore,
    *,
    actor: str,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    edit: CourseEdit,
) -> CourseView:
    async with store.transaction() as tx:
        require_staff(await tx.role(organization_id, actor))
        course = rules.found(await tx.lock_course(organization_id, course_id))
        curriculum = await tx.curriculum(course_id)
        return await _save(tx, rules.edit_course(course, edit, curriculum, datetime.now(UTC)))


async def set_day(
    store: CatalogStore,
    *,
    actor: str,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    day_offset: int,
    workout_ids: list[uuid.UUID],
    is_rest: bool,
) -> CourseView:
    """Replace one day entirely, keeping the order of ``workout_ids``."""
    async with store.transaction() as tx:
        require_staff(await tx.role(organization_id, actor))
        course = rules.found(await tx.lock_course(organization_id, course_id))
        outcome = rules.set_day(
            course,
            await tx.curriculum(course_id),
            day_offset=day_offset,
            workout_ids=workout_ids,
            is_rest=is_rest,
            known_workouts=(
                await tx.live_workout_ids(organization_id, workout_ids) if workout_ids else set()
            ),
        )
        await tx.replace_day(course_id, day_offset, outcome.day, outcome.items)
        return await _save(tx, CourseOutcome(outcome.course, outcome.events))


async def publish_course(
    store: CatalogStore, *, actor: str, organization_id: uuid.UUID, course_id: uuid.UUID
) -> CourseView:
    async with store.transaction() as tx:
        require_staff(await tx.role(organization_id, actor))
        course = rules.found(await tx.lock_course(organization_id, course_id))
        curriculum = await tx.curriculum(course_id)
        return await _save(tx, rules.publish_course(course, curriculum, datetime.now(UTC)))


async def archive_course(
    store: CatalogStore, *, actor: str, organization_id: uuid.UUID, course_id: uuid.UUID
) -> CourseView:
    async with store.transaction() as tx:
        require_staff(await tx.role(organization_id, actor))
        course = rules.found(await tx.lock_course(organization_id, course_id))
        return await _save(tx, rules.archive_course(course, datetime.now(UTC)))


async def list_courses(
    store: CatalogStore, *, actor: str, organization_id: uuid.UUID
) -> list[CourseView]:
    async with store.reading() as reader:
        require_staff(await reader.role(organization_id, actor))
        return await reader.course_views(organization_id)


async def get_course(
    store: CatalogStore, *, actor: str, organization_id: uuid.UUID, course_id: uuid.UUID
) -> CourseView:
    async with store.reading() as reader:
        require_staff(await reader.role(organization_id, actor))
        views = await reader.course_views(organization_id, course_id)
    if not views:
        raise rules.course_not_found()
    return views[0]
