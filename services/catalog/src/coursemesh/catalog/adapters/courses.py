"""Course reads shared by the course use cases: the locked aggregate and the staff views."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from coursemesh.catalog.adapters.tables import (
    course_configs,
    course_days,
    course_items,
    programs,
    workouts,
)
from coursemesh.catalog.app.views import CourseView, DayView, ItemView
from coursemesh.catalog.domain.course import SetDay, SetItem, dense_curriculum
from coursemesh.chassis.errors import NotFound

_COURSE_COLUMNS = (
    programs.c.id,
    programs.c.organization_id,
    programs.c.name,
    programs.c.description,
    programs.c.image_url,
    course_configs.c.status,
    course_configs.c.duration_days,
    course_configs.c.preview_type,
    course_configs.c.published_at,
    course_configs.c.archived_at,
    course_configs.c.curriculum_version,
    course_configs.c.version,
)


def course_not_found() -> NotFound:
    return NotFound("Course not found", code="COURSE_NOT_FOUND")


async def lock_course(
    session: AsyncSession, organization_id: uuid.UUID, course_id: uuid.UUID
) -> Any:
    """The course row, locked for this transaction: commands on one course run one at a time,
    so versions never skip or repeat. Another organization's course is "not found"."""
    row = (
        await session.execute(
            sa.select(*_COURSE_COLUMNS)
            .join(course_configs, course_configs.c.program_id == programs.c.id)
            .where(programs.c.id == course_id, programs.c.organization_id == organization_id)
            .with_for_update(of=course_configs)
        )
    ).one_or_none()
    if row is None:
        raise course_not_found()
    return row


async def curriculum_rows(
    session: AsyncSession, course_ids: Sequence[uuid.UUID]
) -> tuple[Sequence[Any], Sequence[Any]]:
    days = (
        await session.execute(
            sa.select(course_days).where(course_days.c.program_id.in_(course_ids))
        )
    ).all()
    items = (
        await session.execute(
            sa.select(*course_items.c, workouts.c.title)
            .join(workouts, workouts.c.id == course_items.c.workout_id)
            .where(course_items.c.program_id.in_(course_ids))
            .order_by(course_items.c.day_offset, course_items.c.position)
        )
    ).all()
    return days, items


def curriculum_of(
    duration_days: int, days: Sequence[sa.Row[Any]], items: Sequence[sa.Row[Any]]
) -> list[Any]:
    """The contract's dense curriculum from the rows of one course."""
    return dense_curriculum(
        duration_days,
        [SetDay(day_offset=d.day_offset, is_rest=d.is_rest) for d in days],
        [
            SetItem(
                item_id=i.id, day_offset=i.day_offset, workout_id=i.workout_id, position=i.position
            )
            for i in items
        ],
    )


async def course_views(
    session: AsyncSession, organization_id: uuid.UUID, course_id: uuid.UUID | None = None
) -> list[CourseView]:
    """Staff views of one course or of every course of the organization (drafts included), in
    three queries whatever the number of courses."""
    query = (
        sa.select(*_COURSE_COLUMNS)
        .join(course_configs, course_configs.c.program_id == programs.c.id)
        .where(programs.c.organization_id == organization_id)
        .order_by(programs.c.created_at, programs.c.id)
    )
    if course_id is not None:
        query = query.where(programs.c.id == course_id)
    courses = (await session.execute(query)).all()
    if not courses:
        return []
    days, items = await curriculum_rows(session, [c.id for c in courses])
    titles = {i.id: i.title for i in items}
    views = []
    for c in courses:
        dense = curriculum_of(
            c.duration_days,
            [d for d in days if d.program_id == c.id],
            [i for i in items if i.program_id == c.id],
        )
        curriculum = [
            DayView(
                day_offset=day.day_offset,
                is_rest=day.is_rest,
                items=[
                    ItemView(
                        item_id=it.item_id,
                        workout_id=it.workout_id,
                        position=it.position,
                        title=titles[it.item_id],
                    )
                    for it in day.items
                ],
            )
            for day in dense
        ]
        views.append(
            CourseView(
                id=c.id,
                organization_id=c.organization_id,
                name=c.name,
                description=c.description,
                image_url=c.image_url,
                status=c.status,
                duration_days=c.duration_days,
                preview_type=c.preview_type,
                published_at=c.published_at,
                archived_at=c.archived_at,
                curriculum_version=c.curriculum_version,
                workout_count=sum(len(d.items) for d in curriculum),
                curriculum=curriculum,
            )
        )
    return views
