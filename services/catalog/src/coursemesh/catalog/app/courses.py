"""Use cases for courses: the seed's trainer-side flows and lifecycle.

A course is one aggregate (``course_configs.version`` counts its events); every curriculum change
also bumps ``curriculum_version``, which the curriculum and published events carry.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from coursemesh.catalog.adapters.access import caller_role
from coursemesh.catalog.adapters.courses import (
    course_not_found,
    course_views,
    curriculum_of,
    curriculum_rows,
    lock_course,
)
from coursemesh.catalog.adapters.tables import (
    course_configs,
    course_days,
    course_items,
    programs,
    workouts,
)
from coursemesh.catalog.app.views import CourseView
from coursemesh.catalog.domain.course import (
    DELIVERY_MODE,
    PROGRAM_TYPE,
    check_archivable,
    check_day,
    check_duration,
    check_publishable,
)
from coursemesh.catalog.domain.roles import require_staff
from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.chassis.errors import Unprocessable
from coursemesh.contracts.catalog import (
    CourseArchived,
    CourseDetailsChanged,
    CoursePublished,
    CurriculumChanged,
)
from coursemesh.contracts.types import PreviewType

UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


async def _staff(uow: UnitOfWork, organization_id: uuid.UUID, actor: str) -> None:
    require_staff(await caller_role(uow.session, organization_id, actor))


async def _view(uow: UnitOfWork, organization_id: uuid.UUID, course_id: uuid.UUID) -> CourseView:
    (view,) = await course_views(uow.session, organization_id, course_id)
    return view


async def _bump_version(uow: UnitOfWork, course_id: uuid.UUID, **values: Any) -> sa.Row[Any]:
    """Apply ``values`` to the config and take the next aggregate version for one event."""
    return (
        await uow.session.execute(
            sa.update(course_configs)
            .where(course_configs.c.program_id == course_id)
            .values(**values, version=course_configs.c.version + 1)
            .returning(*course_configs.c)
        )
    ).one()


async def _publish_details(uow: UnitOfWork, course_id: uuid.UUID) -> None:
    config = await _bump_version(uow, course_id)
    program = (
        await uow.session.execute(sa.select(programs).where(programs.c.id == course_id))
    ).one()
    uow.publish(
        CourseDetailsChanged(
            course_id=course_id,
            organization_id=program.organization_id,
            name=program.name,
            description=program.description,
            image_url=program.image_url,
            duration_days=config.duration_days,
            preview_type=config.preview_type,
            status=config.status,
        ),
        aggregate_id=course_id,
        aggregate_version=config.version,
    )


async def _publish_curriculum(
    uow: UnitOfWork, organization_id: uuid.UUID, course_id: uuid.UUID
) -> None:
    config = await _bump_version(
        uow, course_id, curriculum_version=course_configs.c.curriculum_version + 1
    )
    days, items = await curriculum_rows(uow.session, [course_id])
    uow.publish(
        CurriculumChanged(
            course_id=course_id,
            organization_id=organization_id,
            curriculum_version=config.curriculum_version,
            duration_days=config.duration_days,
            days=curriculum_of(config.duration_days, days, items),
        ),
        aggregate_id=course_id,
        aggregate_version=config.version,
    )


async def create_course(
    db: Database,
    *,
    actor: str,
    organization_id: uuid.UUID,
    name: str,
    description: str | None,
    image_url: str | None,
    duration_days: int,
    preview_type: PreviewType,
) -> CourseView:
    """Program (deliveryMode='course', type='remote') and course_config (draft) together."""
    async with db.unit_of_work() as uow:
        await _staff(uow, organization_id, actor)
        course_id = uuid.uuid4()
        now = datetime.now(UTC)
        await uow.session.execute(
            sa.insert(programs).values(
                id=course_id,
                organization_id=organization_id,
                name=name,
                description=description,
                image_url=image_url,
                delivery_mode=DELIVERY_MODE,
                type=PROGRAM_TYPE,
                created_at=now,
                updated_at=now,
            )
        )
        # version 0 + the details event below = version 1; the curriculum starts empty at 0.
        await uow.session.execute(
            sa.insert(course_configs).values(
                program_id=course_id,
                status="draft",
                duration_days=duration_days,
                preview_type=preview_type,
                curriculum_version=0,
                version=0,
            )
        )
        await _publish_details(uow, course_id)
        return await _view(uow, organization_id, course_id)


async def update_course(
    db: Database,
    *,
    actor: str,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    name: str | Unset = UNSET,
    description: str | Unset | None = UNSET,
    image_url: str | Unset | None = UNSET,
    duration_days: int | Unset = UNSET,
    preview_type: PreviewType | Unset = UNSET,
) -> CourseView:
    program_changes = {
        k: v
        for k, v in {"name": name, "description": description, "image_url": image_url}.items()
        if not isinstance(v, Unset)
    }
    config_changes = {
        k: v
        for k, v in {"duration_days": duration_days, "preview_type": preview_type}.items()
        if not isinstance(v, Unset)
    }
    async with db.unit_of_work() as uow:
        await _staff(uow, organization_id, actor)
        course = await lock_course(uow.session, organization_id, course_id)
        duration_changed = False
        if not isinstance(duration_days, Unset) and duration_days != course.duration_days:
            duration_changed = True
            highest = await uow.session.scalar(
                sa.select(sa.func.max(course_days.c.day_offset)).where(
                    course_days.c.program_id == course_id
                )
            )
            check_duration(duration_days, highest)
        if program_changes:
            await uow.session.execute(
                sa.update(programs)
                .where(programs.c.id == course_id)
                .values(**program_changes, updated_at=datetime.now(UTC))
            )
        if config_changes:
            await uow.session.execute(
                sa.update(course_configs)
                .where(course_configs.c.program_id == course_id)
                .values(**config_changes)
            )
        await _publish_details(uow, course_id)
        if duration_changed:
            # The dense curriculum gained or lost (empty) days: that is a curriculum change.
            await _publish_curriculum(uow, organization_id, course_id)
        return await _view(uow, organization_id, course_id)


async def set_day(
    db: Database,
    *,
    actor: str,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    day_offset: int,
    workout_ids: list[uuid.UUID],
    is_rest: bool,
) -> CourseView:
    """Replace one day entirely (delete + insert), keeping the order of ``workout_ids``."""
    async with db.unit_of_work() as uow:
        await _staff(uow, organization_id, actor)
        course = await lock_course(uow.session, organization_id, course_id)
        check_day(
            day_offset=day_offset,
            duration_days=course.duration_days,
            is_rest=is_rest,
            workout_ids=workout_ids,
        )
        await _check_workouts_usable(uow, organization_id, workout_ids)
        await uow.session.execute(
            sa.delete(course_days).where(
                course_days.c.program_id == course_id, course_days.c.day_offset == day_offset
            )
        )
        if is_rest or workout_ids:
            await uow.session.execute(
                sa.insert(course_days).values(
                    program_id=course_id, day_offset=day_offset, is_rest=is_rest
                )
            )
        if workout_ids:
            await uow.session.execute(
                sa.insert(course_items),
                [
                    {
                        "id": uuid.uuid4(),
                        "program_id": course_id,
                        "day_offset": day_offset,
                        "workout_id": workout_id,
                        "position": position,
                    }
                    for position, workout_id in enumerate(workout_ids)
                ],
            )
        await _publish_curriculum(uow, organization_id, course_id)
        return await _view(uow, organization_id, course_id)


async def _check_workouts_usable(
    uow: UnitOfWork, organization_id: uuid.UUID, workout_ids: list[uuid.UUID]
) -> None:
    """Every workout is a live workout of this organization; a foreign id looks unknown."""
    if not workout_ids:
        return
    known = set(
        (
            await uow.session.execute(
                sa.select(workouts.c.id).where(
                    workouts.c.id.in_(set(workout_ids)),
                    workouts.c.organization_id == organization_id,
                    workouts.c.deleted_at.is_(None),
                )
            )
        ).scalars()
    )
    unknown = [i for i, w in enumerate(workout_ids) if w not in known]
    if unknown:
        raise Unprocessable(
            "Some workouts are not in the organization's library",
            code="UNKNOWN_WORKOUT",
            extra={
                "errors": [
                    {"path": f"$.workoutIds[{i}]", "message": "unknown workout"} for i in unknown
                ]
            },
        )


async def publish_course(
    db: Database, *, actor: str, organization_id: uuid.UUID, course_id: uuid.UUID
) -> CourseView:
    async with db.unit_of_work() as uow:
        await _staff(uow, organization_id, actor)
        course = await lock_course(uow.session, organization_id, course_id)
        item_count = await uow.session.scalar(
            sa.select(sa.func.count()).where(course_items.c.program_id == course_id)
        )
        check_publishable(course.status, int(item_count or 0))
        now = datetime.now(UTC)
        config = await _bump_version(
            uow, course_id, status="published", published_at=now, archived_at=None
        )
        uow.publish(
            CoursePublished(
                course_id=course_id,
                organization_id=organization_id,
                published_at=now,
                curriculum_version=config.curriculum_version,
            ),
            aggregate_id=course_id,
            aggregate_version=config.version,
        )
        return await _view(uow, organization_id, course_id)


async def archive_course(
    db: Database, *, actor: str, organization_id: uuid.UUID, course_id: uuid.UUID
) -> CourseView:
    async with db.unit_of_work() as uow:
        await _staff(uow, organization_id, actor)
        course = await lock_course(uow.session, organization_id, course_id)
        check_archivable(course.status)
        now = datetime.now(UTC)
        config = await _bump_version(uow, course_id, status="archived", archived_at=now)
        uow.publish(
            CourseArchived(course_id=course_id, organization_id=organization_id, archived_at=now),
            aggregate_id=course_id,
            aggregate_version=config.version,
        )
        return await _view(uow, organization_id, course_id)


async def list_courses(db: Database, *, actor: str, organization_id: uuid.UUID) -> list[CourseView]:
    async with db.unit_of_work() as uow:
        await _staff(uow, organization_id, actor)
        return await course_views(uow.session, organization_id)


async def get_course(
    db: Database, *, actor: str, organization_id: uuid.UUID, course_id: uuid.UUID
) -> CourseView:
    async with db.unit_of_work() as uow:
        await _staff(uow, organization_id, actor)
        views = await course_views(uow.session, organization_id, course_id)
    if not views:
        raise course_not_found()
    return views[0]
