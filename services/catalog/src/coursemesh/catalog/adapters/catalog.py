"""The catalog store on PostgreSQL: :class:`~coursemesh.catalog.app.ports.CatalogStore` on the
service's database, one SQLAlchemy session per transaction (or per read)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from coursemesh.catalog.adapters import courses
from coursemesh.catalog.adapters.tables import memberships, organizations, workouts
from coursemesh.catalog.app.ports import MemberOf, SlugTaken
from coursemesh.catalog.app.views import CourseView
from coursemesh.catalog.domain.course import Course, Curriculum, SetDay, SetItem
from coursemesh.catalog.domain.organization import Organization
from coursemesh.catalog.domain.roles import Membership
from coursemesh.catalog.domain.workout import Workout
from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.contracts import Envelope, Event
from coursemesh.contracts.types import Role


def _organization(row: sa.Row[Any]) -> Organization:
    return Organization(
        id=row.id,
        name=row.name,
        slug=row.slug,
        logo_url=row.logo_url,
        currency=row.currency,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _membership(row: sa.Row[Any]) -> Membership:
    return Membership(
        id=row.id,
        organization_id=row.organization_id,
        user_id=row.user_id,
        role=cast(Role | None, row.role),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _workout(row: sa.Row[Any]) -> Workout:
    return Workout(
        id=row.id,
        organization_id=row.organization_id,
        title=row.title,
        description=row.description,
        duration_minutes=row.duration_minutes,
        instructions=row.instructions,
        media_urls=tuple(row.media_urls),
        deleted_at=row.deleted_at,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _workout_values(workout: Workout) -> dict[str, Any]:
    return {
        "organization_id": workout.organization_id,
        "title": workout.title,
        "description": workout.description,
        "duration_minutes": workout.duration_minutes,
        "instructions": workout.instructions,
        "media_urls": list(workout.media_urls),
        "deleted_at": workout.deleted_at,
        "version": workout.version,
        "updated_at": workout.updated_at,
    }


class SqlCatalogReader:
    """:class:`~coursemesh.catalog.app.ports.CatalogReader` on one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def role(self, organization_id: uuid.UUID, user_id: str) -> Role | None:
        role = await self.session.scalar(
            sa.select(memberships.c.role).where(
                memberships.c.organization_id == organization_id,
                memberships.c.user_id == user_id,
                memberships.c.role.is_not(None),
            )
        )
        return cast(Role | None, role)

    async def organization(self, organization_id: uuid.UUID) -> Organization | None:
        row = (
            await self.session.execute(
                sa.select(organizations).where(organizations.c.id == organization_id)
            )
        ).one_or_none()
        return None if row is None else _organization(row)

    async def members(self, organization_id: uuid.UUID) -> list[Membership]:
        rows = (
            await self.session.execute(
                sa.select(memberships)
                .where(
                    memberships.c.organization_id == organization_id,
                    memberships.c.role.is_not(None),
                )
                .order_by(memberships.c.created_at, memberships.c.user_id)
            )
        ).all()
        return [_membership(r) for r in rows]

    async def organizations_of(
        self, user_id: str, *, limit: int, offset: int
    ) -> tuple[list[MemberOf], int]:
        mine = sa.and_(
            memberships.c.organization_id == organizations.c.id,
            memberships.c.user_id == user_id,
            memberships.c.role.is_not(None),
        )
        # One statement for the usual call: the page and, on each of its rows, the count.
        rows = (
            await self.session.execute(
                sa.select(
                    organizations,
                    memberships.c.role.label("member_role"),
                    sa.func.count().over().label("member_total"),
                )
                .select_from(organizations.join(memberships, mine))
                .order_by(organizations.c.name, organizations.c.id)
                .limit(limit)
                .offset(offset)
            )
        ).all()
        page = [MemberOf(_organization(r), cast(Role, r.member_role)) for r in rows]
        if rows:
            return page, int(rows[0].member_total)
        if offset == 0:
            return page, 0
        # A page past the end has no row to carry the count.
        total = await self.session.scalar(
            sa.select(sa.func.count()).select_from(organizations.join(memberships, mine))
        )
        return page, int(total or 0)

    async def workouts(self, organization_id: uuid.UUID) -> list[Workout]:
        rows = (
            await self.session.execute(
                sa.select(workouts)
                .where(
                    workouts.c.organization_id == organization_id,
                    workouts.c.deleted_at.is_(None),
                )
                .order_by(workouts.c.created_at, workouts.c.id)
            )
        ).all()
        return [_workout(r) for r in rows]

    async def workout(self, organization_id: uuid.UUID, workout_id: uuid.UUID) -> Workout | None:
        return await self._workout(organization_id, workout_id, lock=False)

    async def _workout(
        self, organization_id: uuid.UUID, workout_id: uuid.UUID, *, lock: bool
    ) -> Workout | None:
        # The organization is part of every lookup: another's workout id is simply not there.
        query = sa.select(workouts).where(
            workouts.c.id == workout_id, workouts.c.organization_id == organization_id
        )
        if lock:
            query = query.with_for_update()
        row = (await self.session.execute(query)).one_or_none()
        return None if row is None else _workout(row)

    async def course_views(
        self, organization_id: uuid.UUID, course_id: uuid.UUID | None = None
    ) -> list[CourseView]:
        return await courses.course_views(self.session, organization_id, course_id)


class SqlCatalogWriter(SqlCatalogReader):
    """:class:`~coursemesh.catalog.app.ports.CatalogWriter` on one unit of work."""

    def __init__(self, uow: UnitOfWork) -> None:
        super().__init__(uow.session)
        self._uow = uow

    def publish(
        self, payload: Event, *, aggregate_id: str | uuid.UUID, aggregate_version: int
    ) -> Envelope[Event]:
        return self._uow.publish(
            payload, aggregate_id=aggregate_id, aggregate_version=aggregate_version
        )

    async def add_organization(self, organization: Organization) -> None:
        await self._write_organization(
            sa.insert(organizations).values(
                id=organization.id,
                created_at=organization.created_at,
                **_organization_values(organization),
            )
        )

    async def lock_organization(self, organization_id: uuid.UUID) -> Organization | None:
        row = (
            await self.session.execute(
                sa.select(organizations)
                .where(organizations.c.id == organization_id)
                .with_for_update()
            )
        ).one_or_none()
        return None if row is None else _organization(row)

    async def save_organization(self, organization: Organization) -> None:
        await self._write_organization(
            sa.update(organizations)
            .where(organizations.c.id == organization.id)
            .values(**_organization_values(organization))
        )

    async def _write_organization(self, statement: sa.Insert | sa.Update) -> None:
        try:
            await self.session.execute(statement)
        except IntegrityError as exc:  # the one unique column besides the id: the slug
            raise SlugTaken from exc

    async def lock_owners(self, organization_id: uuid.UUID) -> int:
        rows = await self.session.execute(
            sa.select(memberships.c.id)
            .where(
                memberships.c.organization_id == organization_id,
                memberships.c.role == "owner",
            )
            .with_for_update()
        )
        return len(rows.all())

    async def lock_membership(self, organization_id: uuid.UUID, user_id: str) -> Membership | None:
        row = (
            await self.session.execute(
                sa.select(memberships)
                .where(
                    memberships.c.organization_id == organization_id,
                    memberships.c.user_id == user_id,
                )
                .with_for_update()
            )
        ).one_or_none()
        return None if row is None else _membership(row)

    async def add_membership(self, membership: Membership) -> None:
        await self.session.execute(
            sa.insert(memberships).values(
                id=membership.id,
                organization_id=membership.organization_id,
                user_id=membership.user_id,
                role=membership.role,
                version=membership.version,
                created_at=membership.created_at,
                updated_at=membership.updated_at,
            )
        )

    async def save_membership(self, membership: Membership) -> None:
        await self.session.execute(
            sa.update(memberships)
            .where(memberships.c.id == membership.id)
            .values(
                role=membership.role,
                version=membership.version,
                updated_at=membership.updated_at,
            )
        )

    async def lock_workout(
        self, organization_id: uuid.UUID, workout_id: uuid.UUID
    ) -> Workout | None:
        return await self._workout(organization_id, workout_id, lock=True)

    async def add_workout(self, workout: Workout) -> None:
        await self.session.execute(
            sa.insert(workouts).values(
                id=workout.id, created_at=workout.created_at, **_workout_values(workout)
            )
        )

    async def save_workout(self, workout: Workout) -> None:
        await self.session.execute(
            sa.update(workouts)
            .where(workouts.c.id == workout.id)
            .values(**_workout_values(workout))
        )

    async def live_workout_ids(
        self, organization_id: uuid.UUID, workout_ids: Collection[uuid.UUID]
    ) -> set[uuid.UUID]:
        if not workout_ids:
            return set()
        return set(
            (
                await self.session.execute(
                    sa.select(workouts.c.id).where(
                        workouts.c.id.in_(set(workout_ids)),
                        workouts.c.organization_id == organization_id,
                        workouts.c.deleted_at.is_(None),
                    )
                )
            ).scalars()
        )

    async def lock_course(self, organization_id: uuid.UUID, course_id: uuid.UUID) -> Course | None:
        return await courses.lock_course(self.session, organization_id, course_id)

    async def curriculum(self, course_id: uuid.UUID) -> Curriculum:
        return await courses.curriculum(self.session, course_id)

    async def add_course(self, course: Course) -> None:
        await courses.add_course(self.session, course)

    async def save_course(self, course: Course) -> None:
        await courses.save_course(self.session, course)

    async def replace_day(
        self,
        course_id: uuid.UUID,
        day_offset: int,
        day: SetDay | None,
        items: Sequence[SetItem],
    ) -> None:
        await courses.replace_day(self.session, course_id, day_offset, day, items)


def _organization_values(organization: Organization) -> dict[str, Any]:
    return {
        "name": organization.name,
        "slug": organization.slug,
        "logo_url": organization.logo_url,
        "currency": organization.currency,
        "version": organization.version,
        "updated_at": organization.updated_at,
    }


class SqlCatalogStore:
    """:class:`~coursemesh.catalog.app.ports.CatalogStore` on the service's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlCatalogWriter]:
        async with self._db.unit_of_work() as uow:
            yield SqlCatalogWriter(uow)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[SqlCatalogReader]:
        # A session that is never committed: it rolls back when closed, so a read does not
        # count as a commit (the commit listeners, such as the storefront cache, stay quiet).
        async with self._db.sessions() as session:
            yield SqlCatalogReader(session)
