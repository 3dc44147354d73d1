"""Use cases for the workout library.

Deleting is a soft delete: the workout disappears from the library and can no longer be put on
a day, but curricula that use it keep it, so buyers of a live course never lose a day's content.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from coursemesh.catalog.adapters.access import caller_role
from coursemesh.catalog.adapters.tables import workouts
from coursemesh.catalog.app.views import WorkoutView
from coursemesh.catalog.domain.roles import require_staff
from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.chassis.errors import NotFound
from coursemesh.contracts.catalog import WorkoutDeleted, WorkoutUpserted

UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


def workout_not_found() -> NotFound:
    return NotFound("Workout not found", code="WORKOUT_NOT_FOUND")


def _view(row: sa.Row[Any]) -> WorkoutView:
    return WorkoutView(
        id=row.id,
        organization_id=row.organization_id,
        title=row.title,
        description=row.description,
        duration_minutes=row.duration_minutes,
        instructions=row.instructions,
        media_urls=list(row.media_urls),
    )


def _publish_upserted(uow: UnitOfWork, row: sa.Row[Any]) -> None:
    uow.publish(
        WorkoutUpserted(
            workout_id=row.id,
            organization_id=row.organization_id,
            title=row.title,
            description=row.description,
            duration_minutes=row.duration_minutes,
            instructions=row.instructions,
            media_urls=list(row.media_urls),
        ),
        aggregate_id=row.id,
        aggregate_version=row.version,
    )


def _live_in_org(organization_id: uuid.UUID, workout_id: uuid.UUID) -> sa.ColumnElement[bool]:
    # The org is part of every lookup: another org's workout id is simply "not found".
    return sa.and_(
        workouts.c.id == workout_id,
        workouts.c.organization_id == organization_id,
        workouts.c.deleted_at.is_(None),
    )


async def create_workout(
    db: Database,
    *,
    actor: str,
    organization_id: uuid.UUID,
    title: str,
    description: str | None,
    duration_minutes: int | None,
    instructions: str | None,
    media_urls: list[str],
) -> WorkoutView:
    async with db.unit_of_work() as uow:
        require_staff(await caller_role(uow.session, organization_id, actor))
        now = datetime.now(UTC)
        row = (
            await uow.session.execute(
                sa.insert(workouts)
                .values(
                    id=uuid.uuid4(),
                    organization_id=organization_id,
                    title=title,
                    description=description,
                    duration_minutes=duration_minutes,
                    instructions=instructions,
                    media_urls=media_urls,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*workouts.c)
            )
        ).one()
        _publish_upserted(uow, row)
    return _view(row)


async def list_workouts(
    db: Database, *, actor: str, organization_id: uuid.UUID
) -> list[WorkoutView]:
    async with db.sessions() as session:
        require_staff(await caller_role(session, organization_id, actor))
        rows = (
            await session.execute(
                sa.select(workouts)
                .where(
                    workouts.c.organization_id == organization_id,
                    workouts.c.deleted_at.is_(None),
                )
                .order_by(workouts.c.created_at, workouts.c.id)
            )
        ).all()
    return [_view(r) for r in rows]


async def get_workout(
    db: Database, *, actor: str, organization_id: uuid.UUID, workout_id: uuid.UUID
) -> WorkoutView:
    async with db.sessions() as session:
        require_staff(await caller_role(session, organization_id, actor))
        query = sa.select(workouts).where(_live_in_org(organization_id, workout_id))
        row = (await session.execute(query)).one_or_none()
    if row is None:
        raise workout_not_found()
    return _view(row)


async def update_workout(
    db: Database,
    *,
    actor: str,
    organization_id: uuid.UUID,
    workout_id: uuid.UUID,
    title: str | Unset = UNSET,
    description: str | Unset | None = UNSET,
    duration_minutes: int | Unset | None = UNSET,
    instructions: str | Unset | None = UNSET,
    media_urls: list[str] | Unset = UNSET,
) -> WorkoutView:
    changes = {
        key: value
        for key, value in {
            "title": title,
            "description": description,
            "duration_minutes": duration_minutes,
            "instructions": instructions,
            "media_urls": media_urls,
        }.items()
        if not isinstance(value, Unset)
    }
    async with db.unit_of_work() as uow:
        require_staff(await caller_role(uow.session, organization_id, actor))
        row = (
            await uow.session.execute(
                sa.update(workouts)
                .where(_live_in_org(organization_id, workout_id))
                .values(**changes, version=workouts.c.version + 1, updated_at=datetime.now(UTC))
                .returning(*workouts.c)
            )
        ).one_or_none()
        if row is None:
            raise workout_not_found()
        _publish_upserted(uow, row)
    return _view(row)


async def delete_workout(
    db: Database, *, actor: str, organization_id: uuid.UUID, workout_id: uuid.UUID
) -> None:
    async with db.unit_of_work() as uow:
        require_staff(await caller_role(uow.session, organization_id, actor))
        now = datetime.now(UTC)
        row = (
            await uow.session.execute(
                sa.update(workouts)
                .where(_live_in_org(organization_id, workout_id))
                .values(deleted_at=now, version=workouts.c.version + 1, updated_at=now)
                .returning(workouts.c.id, workouts.c.organization_id, workouts.c.version)
            )
        ).one_or_none()
        if row is None:
            raise workout_not_found()
        uow.publish(
            WorkoutDeleted(workout_id=row.id, organization_id=row.organization_id, deleted_at=now),
            aggregate_id=row.id,
            aggregate_version=row.version,
        )
