"""Course reads and writes on the catalog tables: the aggregate, its curriculum, the staff
views."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

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
from coursemesh.catalog.domain.course import (
    DELIVERY_MODE,
    PROGRAM_TYPE,
    Course,
    Curriculum,
    SetDay,
    SetItem,
    dense_curriculum,
)

Row = sa.Row[*tuple[Any, ...]]

_COURSE_COLUMNS = (
    programs.c.id,
    programs.c.organization_id,
    programs.c.name,
    programs.c.description,
    programs.c.image_url,
    programs.c.created_at,
    programs.c.updated_at,
    course_configs.c.status,
    course_configs.c.duration_days,
    course_configs.c.preview_type,
    course_configs.c.release_mode,
    course_configs.c.max_pauses,
    course_configs.c.max_pause_days,
    course_configs.c.published_at,
    course_configs.c.archived_at,
    course_configs.c.curriculum_version,
    course_configs.c.version,
)


def _course(row: Row) -> Course:
    return Course(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        description=row.description,
        image_url=row.image_url,
        status=row.status,
        duration_days=row.duration_days,
        preview_type=row.preview_type,
        published_at=row.published_at,
        archived_at=row.archived_at,
        curriculum_version=row.curriculum_version,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        release_mode=row.release_mode,
        max_pauses=row.max_pauses,
        max_pause_days=row.max_pause_days,
    )


async def lock_course(
    session: AsyncSession, organization_id: uuid.UUID, course_id: uuid.UUID
) -> Course | None:
    """The course, its config row locked for this transaction (every course command takes that
    lock first, so commands on one course run one at a time)."""
    row = (
        await session.execute(
            sa.select(*_COURSE_COLUMNS)
            .join(course_configs, course_configs.c.program_id == programs.c.id)
            .where(programs.c.id == course_id, programs.c.organization_id == organization_id)
            .with_for_update(of=course_configs)
        )
    ).one_or_none()
    return None if row is None else _course(row)


async def add_course(session: AsyncSession, course: Course) -> None:
    await session.execute(
        sa.insert(programs).values(
            id=course.id,
            organization_id=course.organization_id,
            name=course.name,
            description=course.description,
            image_url=course.image_url,
            delivery_mode=DELIVERY_MODE,
            type=PROGRAM_TYPE,
            created_at=course.created_at,
            updated_at=course.updated_at,
        )
    )
    await session.execute(sa.insert(course_configs).values(program_id=course.id, **_config(course)))


def _config(course: Course) -> dict[str, Any]:
    return {
        "status": course.status,
        "duration_days": course.duration_days,
        "preview_type": course.preview_type,
        "release_mode": course.release_mode,
        "max_pauses": course.max_pauses,
        "max_pause_days": course.max_pause_days,
        "published_at": course.published_at,
        "archived_at": course.archived_at,
        "curriculum_version": course.curriculum_version,
        "version": course.version,
    }


async def save_course(session: AsyncSession, course: Course) -> None:
    await session.execute(
        sa.update(programs)
        .where(programs.c.id == course.id)
        .values(
            name=course.name,
            description=course.description,
            image_url=course.image_url,
            updated_at=course.updated_at,
        )
    )
    await session.execute(
        sa.update(course_configs)
        .where(course_configs.c.program_id == course.id)
        .values(**_config(course))
    )


async def curriculum(session: AsyncSession, course_id: uuid.UUID) -> Curriculum:
    days, items = await _curriculum_rows(session, [course_id])
    return Curriculum(
        days=tuple(_set_day(d) for d in days), items=tuple(_set_item(i) for i in items)
    )


async def replace_day(
    session: AsyncSession,
    course_id: uuid.UUID,
    day_offset: int,
    day: SetDay | None,
    items: Sequence[SetItem],
) -> None:
    # Its items go with it (ON DELETE CASCADE).
    await session.execute(
        sa.delete(course_days).where(
            course_days.c.program_id == course_id, course_days.c.day_offset == day_offset
        )
    )
    if day is not None:
        await session.execute(
            sa.insert(course_days).values(
                program_id=course_id, day_offset=day.day_offset, is_rest=day.is_rest
            )
        )
    if items:
        await session.execute(
            sa.insert(course_items),
            [
                {
                    "id": item.item_id,
                    "program_id": course_id,
                    "day_offset": item.day_offset,
                    "workout_id": item.workout_id,
                    "position": item.position,
                }
                for item in items
            ],
        )


def _set_day(row: Row) -> SetDay:
    return SetDay(day_offset=row.day_offset, is_rest=row.is_rest)


def _set_item(row: Row) -> SetItem:
    return SetItem(
        item_id=row.id, day_offset=row.day_offset, workout_id=row.workout_id, position=row.position
    )


async def _curriculum_rows(
    session: AsyncSession, course_ids: Sequence[uuid.UUID]
) -> tuple[Sequence[Row], Sequence[Row]]:
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
    days, items = await _curriculum_rows(session, [c.id for c in courses])
    titles = {i.id: cast(str, i.title) for i in items}
    views = []
    for c in courses:
        dense = dense_curriculum(
            c.duration_days,
            [_set_day(d) for d in days if d.program_id == c.id],
            [_set_item(i) for i in items if i.program_id == c.id],
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
                release_mode=c.release_mode,
                max_pauses=c.max_pauses,
                max_pause_days=c.max_pause_days,
                published_at=c.published_at,
                archived_at=c.archived_at,
                curriculum_version=c.curriculum_version,
                workout_count=sum(len(d.items) for d in curriculum),
                curriculum=curriculum,
            )
        )
    return views
