"""SQL implementation of the learning stores (SQLAlchemy Core on the service's own tables, in
the caller's transaction)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from coursemesh.chassis.transaction import Driver
from coursemesh.learning.adapters.library import stamp
from coursemesh.learning.adapters.tables import (
    certificates,
    completion_history,
    completions,
    courses,
    enrollment_pauses,
    enrollments,
    entitlements,
    item_changes,
    memberships,
    organizations,
    workouts,
)
from coursemesh.learning.app.ports import EnrollmentRow, LibraryEntry, SortKey
from coursemesh.learning.domain.certificate import Certificate, Organization
from coursemesh.learning.domain.model import (
    Completion,
    Course,
    CourseDetails,
    Day,
    Enrollment,
    Entitlement,
    Pause,
    Workout,
)

#: A row of a Core statement, read by column name.
_Row = sa.Row[*tuple[Any, ...]]

_ENROLLMENT_COLUMNS = (
    enrollments.c.entitlement_id,
    enrollments.c.start_date,
    enrollments.c.completed_at,
    enrollments.c.restart_count,
    enrollments.c.last_activity_at,
    enrollments.c.version,
    enrollments.c.unlocked_at,
    enrollments.c.unlocked_by,
    enrollments.c.unlock_reason,
)


def _entitlement(row: _Row) -> Entitlement:
    return Entitlement(
        entitlement_id=row.entitlement_id,
        user_id=row.user_id,
        course_id=row.course_id,
        organization_id=row.organization_id,
        status=row.status,
        access_revoked_at=row.access_revoked_at,
    )


def _enrollment(row: _Row) -> Enrollment:
    return Enrollment(
        entitlement_id=row.entitlement_id,
        start_date=row.start_date,
        completed_at=row.completed_at,
        restart_count=row.restart_count,
        last_activity_at=row.last_activity_at,
        version=row.version,
        unlocked_at=row.unlocked_at,
        unlocked_by=row.unlocked_by,
        unlock_reason=row.unlock_reason,
    )


def _certificate(row: _Row) -> Certificate:
    return Certificate(
        certificate_id=row.certificate_id,
        entitlement_id=row.entitlement_id,
        run=row.run,
        user_id=row.user_id,
        course_id=row.course_id,
        organization_id=row.organization_id,
        learner_name=row.learner_name,
        course_name=row.course_name,
        organization_name=row.organization_name,
        organization_logo_url=row.organization_logo_url,
        completed_on=row.completed_on,
        issued_at=row.issued_at,
        revoked_at=row.revoked_at,
        stored=row.stored_at is not None,
    )


_PAUSE_COLUMNS = (
    enrollment_pauses.c.run,
    enrollment_pauses.c.paused_on,
    enrollment_pauses.c.paused_at,
    enrollment_pauses.c.paused_by,
    enrollment_pauses.c.resumed_on,
    enrollment_pauses.c.resumed_at,
    enrollment_pauses.c.resumed_by,
    enrollment_pauses.c.days,
)


def _completed_count(entitlement_id: Any) -> sa.ScalarSelect[Any]:
    return (
        sa.select(sa.func.count())
        .select_from(completions)
        .where(completions.c.entitlement_id == entitlement_id)
        .scalar_subquery()
    )


#: Pauses as the JSON text ``_pauses_json`` (and the player's statement) select.
PAUSES = msgspec.json.Decoder(list[Pause])


#: The run's completions as ``_completions_json`` selects them: (item id, completed at).
_COMPLETIONS = msgspec.json.Decoder(list[tuple[str, datetime]])


def _completions_json(entitlement_id: Any) -> sa.ScalarSelect[Any]:
    c = completions
    return (
        sa.select(
            sa.cast(
                sa.func.json_agg(sa.func.json_build_array(c.c.item_id, c.c.completed_at)), sa.Text
            )
        )
        .where(c.c.entitlement_id == entitlement_id)
        .scalar_subquery()
    )


def _pauses_json(entitlement_id: Any) -> sa.ScalarSelect[Any]:
    p = enrollment_pauses
    pause = sa.func.json_build_object(
        *("run", p.c.run, "paused_on", p.c.paused_on, "paused_at", p.c.paused_at),
        *("paused_by", p.c.paused_by, "resumed_on", p.c.resumed_on),
        *("resumed_at", p.c.resumed_at, "resumed_by", p.c.resumed_by, "days", p.c.days),
    )
    return (
        sa.select(sa.cast(sa.func.json_agg(aggregate_order_by(pause, p.c.id)), sa.Text))
        .where(p.c.entitlement_id == entitlement_id)
        .scalar_subquery()
    )


class SqlStore:
    """The player's and the staff's store on one session: the caller's unit of work decides
    the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- player ------------------------------------------------------------------------------

    async def entitlement(self, user_id: str, course_id: uuid.UUID) -> Entitlement | None:
        row = (
            await self._session.execute(
                sa.select(entitlements).where(
                    entitlements.c.user_id == user_id, entitlements.c.course_id == course_id
                )
            )
        ).first()
        return None if row is None else _entitlement(row)

    async def course(self, course_id: uuid.UUID) -> Course | None:
        row = (
            await self._session.execute(sa.select(courses).where(courses.c.course_id == course_id))
        ).first()
        if row is None:
            return None
        return Course(
            details=CourseDetails(
                course_id=row.course_id,
                organization_id=row.organization_id,
                name=row.name,
                image_url=row.image_url,
                duration_days=row.duration_days,
                status=row.status,
                curriculum_version=row.curriculum_version,
                release_mode=row.release_mode,
                max_pauses=row.max_pauses,
                max_pause_days=row.max_pause_days,
            ),
            days=msgspec.convert(row.curriculum, type=list[Day]),
        )

    async def lock_enrollment(self, entitlement: Entitlement) -> Enrollment:
        await self._session.execute(
            pg_insert(enrollments)
            .values(
                entitlement_id=entitlement.entitlement_id,
                user_id=entitlement.user_id,
                course_id=entitlement.course_id,
                organization_id=entitlement.organization_id,
            )
            .on_conflict_do_nothing()
        )
        row = (
            await self._session.execute(
                sa.select(*_ENROLLMENT_COLUMNS)
                .where(enrollments.c.entitlement_id == entitlement.entitlement_id)
                .with_for_update()
            )
        ).one()
        return _enrollment(row)

    async def save_enrollment(self, enrollment: Enrollment) -> None:
        await self._session.execute(
            sa.update(enrollments)
            .where(enrollments.c.entitlement_id == enrollment.entitlement_id)
            .values(
                start_date=enrollment.start_date,
                completed_at=enrollment.completed_at,
                restart_count=enrollment.restart_count,
                last_activity_at=enrollment.last_activity_at,
                version=enrollment.version,
                unlocked_at=enrollment.unlocked_at,
                unlocked_by=enrollment.unlocked_by,
                unlock_reason=enrollment.unlock_reason,
            )
        )

    async def entitlement_by_id(self, entitlement_id: uuid.UUID) -> Entitlement | None:
        row = (
            await self._session.execute(
                sa.select(entitlements).where(entitlements.c.entitlement_id == entitlement_id)
            )
        ).first()
        return None if row is None else _entitlement(row)

    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool:
        found = await self._session.scalar(
            sa.select(memberships.c.is_staff).where(
                memberships.c.organization_id == organization_id,
                memberships.c.user_id == user_id,
            )
        )
        return bool(found)

    async def pauses(self, entitlement_id: uuid.UUID) -> list[Pause]:
        rows = await self._session.execute(
            sa.select(*_PAUSE_COLUMNS)
            .where(enrollment_pauses.c.entitlement_id == entitlement_id)
            .order_by(enrollment_pauses.c.id)
        )
        return [Pause(**r._asdict()) for r in rows]

    async def add_pause(self, entitlement_id: uuid.UUID, pause: Pause) -> None:
        await self._session.execute(
            sa.insert(enrollment_pauses).values(
                entitlement_id=entitlement_id, **msgspec.structs.asdict(pause)
            )
        )

    async def close_pause(self, entitlement_id: uuid.UUID, pause: Pause) -> None:
        await self._session.execute(
            sa.update(enrollment_pauses)
            .where(
                enrollment_pauses.c.entitlement_id == entitlement_id,
                enrollment_pauses.c.resumed_on.is_(None),
            )
            .values(
                resumed_on=pause.resumed_on,
                resumed_at=pause.resumed_at,
                resumed_by=pause.resumed_by,
                days=pause.days,
            )
        )

    async def _driver(self) -> Driver:
        """The session's transaction on the driver (the library stamps are driver SQL)."""
        connection = await self._session.connection()
        driver = cast(Driver, (await connection.get_raw_connection()).driver_connection)
        if not driver.is_in_transaction():
            await self._session.execute(sa.text("SELECT 1"))
        return driver

    async def touch_library(self, user_id: str, course_id: uuid.UUID) -> None:
        await stamp(await self._driver(), [(user_id, course_id, False)])

    async def item_change(self, entitlement_id: uuid.UUID, item_id: uuid.UUID) -> datetime | None:
        changed: datetime | None = await self._session.scalar(
            sa.select(item_changes.c.changed_at).where(
                item_changes.c.entitlement_id == entitlement_id, item_changes.c.item_id == item_id
            )
        )
        return changed

    async def record_item_changes(
        self,
        entitlement_id: uuid.UUID,
        item_ids: Sequence[uuid.UUID],
        at: datetime,
        completed: bool,
    ) -> None:
        if not item_ids:
            return
        insert = pg_insert(item_changes).values(
            [
                {
                    "entitlement_id": entitlement_id,
                    "item_id": item_id,
                    "changed_at": at,
                    "completed": completed,
                }
                for item_id in dict.fromkeys(item_ids)
            ]
        )
        await self._session.execute(
            insert.on_conflict_do_update(
                index_elements=[item_changes.c.entitlement_id, item_changes.c.item_id],
                set_={
                    "changed_at": insert.excluded.changed_at,
                    "completed": insert.excluded.completed,
                },
            )
        )

    async def completions(self, entitlement_id: uuid.UUID) -> list[Completion]:
        rows = await self._session.execute(
            sa.select(
                completions.c.item_id,
                completions.c.workout_id,
                completions.c.day_offset,
                completions.c.curriculum_version,
                completions.c.completed_at,
            ).where(completions.c.entitlement_id == entitlement_id)
        )
        return [
            Completion(
                item_id=r.item_id,
                workout_id=r.workout_id,
                day_offset=r.day_offset,
                curriculum_version=r.curriculum_version,
                completed_at=r.completed_at,
            )
            for r in rows
        ]

    async def add_completion(self, entitlement_id: uuid.UUID, completion: Completion) -> bool:
        inserted = await self._session.execute(
            pg_insert(completions)
            .values(entitlement_id=entitlement_id, **msgspec.structs.asdict(completion))
            .on_conflict_do_nothing()
            .returning(completions.c.item_id)
        )
        return inserted.first() is not None

    async def remove_completion(self, entitlement_id: uuid.UUID, item_id: uuid.UUID) -> bool:
        deleted = await self._session.execute(
            sa.delete(completions)
            .where(completions.c.entitlement_id == entitlement_id, completions.c.item_id == item_id)
            .returning(completions.c.item_id)
        )
        return deleted.first() is not None

    async def archive_completions(
        self, entitlement_id: uuid.UUID, *, run: int, reason: str, now: datetime
    ) -> int:
        moved = (
            sa.delete(completions)
            .where(completions.c.entitlement_id == entitlement_id)
            .returning(*completions.c)
            .cte("moved")
        )
        result = await self._session.execute(
            sa.insert(completion_history)
            .from_select(
                [
                    "entitlement_id",
                    "item_id",
                    "workout_id",
                    "day_offset",
                    "curriculum_version",
                    "completed_at",
                    "run",
                    "reason",
                    "archived_at",
                ],
                sa.select(
                    moved.c.entitlement_id,
                    moved.c.item_id,
                    moved.c.workout_id,
                    moved.c.day_offset,
                    moved.c.curriculum_version,
                    moved.c.completed_at,
                    sa.literal(run),
                    sa.literal(reason),
                    sa.literal(now, sa.DateTime(timezone=True)),
                ),
            )
            .returning(completion_history.c.id)
        )
        return len(result.all())

    async def workouts(self, workout_ids: set[uuid.UUID]) -> dict[uuid.UUID, Workout]:
        if not workout_ids:
            return {}
        rows = await self._session.execute(
            sa.select(workouts).where(workouts.c.workout_id.in_(workout_ids))
        )
        return {
            r.workout_id: Workout(
                workout_id=r.workout_id,
                title=r.title,
                description=r.description,
                duration_minutes=r.duration_minutes,
                instructions=r.instructions,
                media_urls=list(r.media_urls),
            )
            for r in rows
        }

    async def library(self, user_id: str) -> list[LibraryEntry]:
        query = (
            sa.select(
                entitlements,
                courses.c.name,
                courses.c.image_url,
                courses.c.duration_days,
                sa.func.coalesce(courses.c.workout_item_count, 0).label("total_items"),
                enrollments.c.start_date,
                enrollments.c.completed_at,
                _completed_count(entitlements.c.entitlement_id).label("completed_items"),
                sa.func.coalesce(enrollments.c.restart_count, 0).label("restart_count"),
                courses.c.max_pause_days,
                _pauses_json(entitlements.c.entitlement_id).label("pauses"),
            )
            .select_from(
                entitlements.outerjoin(
                    courses, courses.c.course_id == entitlements.c.course_id
                ).outerjoin(
                    enrollments, enrollments.c.entitlement_id == entitlements.c.entitlement_id
                )
            )
            .where(
                entitlements.c.user_id == user_id,
                entitlements.c.status == "active",
                entitlements.c.access_revoked_at.is_(None),
            )
            .order_by(courses.c.name, entitlements.c.course_id)
        )
        return [
            LibraryEntry(
                entitlement=_entitlement(r),
                course_name=r.name,
                image_url=r.image_url,
                duration_days=r.duration_days,
                total_items=r.total_items,
                completed_items=r.completed_items,
                start_date=r.start_date,
                completed_at=r.completed_at,
                restart_count=r.restart_count,
                max_pause_days=r.max_pause_days,
                pauses=[] if r.pauses is None else PAUSES.decode(r.pauses),
            )
            for r in await self._session.execute(query)
        ]

    # --- certificates ------------------------------------------------------------------------

    async def organization(self, organization_id: uuid.UUID) -> Organization | None:
        row = (
            await self._session.execute(
                sa.select(organizations).where(organizations.c.organization_id == organization_id)
            )
        ).first()
        if row is None:
            return None
        return Organization(
            organization_id=row.organization_id, name=row.name, logo_url=row.logo_url
        )

    async def issue_certificate(self, certificate: Certificate) -> Certificate:
        values = msgspec.structs.asdict(certificate)
        del values["stored"]
        await self._session.execute(
            pg_insert(certificates).values(**values).on_conflict_do_nothing()
        )
        # The run's certificate: this one, or the one a completion of the run issued before.
        row = (
            await self._session.execute(
                sa.select(certificates).where(
                    certificates.c.entitlement_id == certificate.entitlement_id,
                    certificates.c.run == certificate.run,
                )
            )
        ).one()
        return _certificate(row)

    async def latest_certificate(self, entitlement_id: uuid.UUID) -> Certificate | None:
        row = (
            await self._session.execute(
                sa.select(certificates)
                .where(certificates.c.entitlement_id == entitlement_id)
                .order_by(certificates.c.run.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else _certificate(row)

    async def certificate(self, certificate_id: uuid.UUID) -> Certificate | None:
        row = (
            await self._session.execute(
                sa.select(certificates).where(certificates.c.certificate_id == certificate_id)
            )
        ).first()
        return None if row is None else _certificate(row)

    async def certificate_stored(self, certificate_id: uuid.UUID) -> None:
        await self._session.execute(
            sa.update(certificates)
            .where(
                certificates.c.certificate_id == certificate_id, certificates.c.stored_at.is_(None)
            )
            .values(stored_at=sa.func.now())
        )

    # --- staff -------------------------------------------------------------------------------

    async def course_organization(self, course_id: uuid.UUID) -> uuid.UUID | None:
        organization: uuid.UUID | None = await self._session.scalar(
            sa.select(courses.c.organization_id).where(courses.c.course_id == course_id)
        )
        return organization

    async def enrollment_rows(
        self,
        course_id: uuid.UUID,
        *,
        sort: SortKey,
        descending: bool,
        limit: int | None,
        offset: int,
    ) -> tuple[list[EnrollmentRow], int]:
        completed = _completed_count(entitlements.c.entitlement_id).label("completed_items")
        active = sa.and_(
            entitlements.c.course_id == course_id,
            entitlements.c.status == "active",
            entitlements.c.access_revoked_at.is_(None),
        )
        order_column: Any = {
            "lastActivityAt": enrollments.c.last_activity_at,
            "startDate": enrollments.c.start_date,
            "completedCount": completed,
            "userId": entitlements.c.user_id,
        }[sort]
        ordering = order_column.desc().nulls_last() if descending else order_column.asc()
        query = (
            sa.select(
                entitlements.c.entitlement_id,
                entitlements.c.user_id,
                enrollments.c.start_date,
                enrollments.c.completed_at,
                sa.func.coalesce(enrollments.c.restart_count, 0).label("restart_count"),
                enrollments.c.last_activity_at,
                completed,
                enrollments.c.unlocked_at,
                enrollments.c.unlocked_by,
                enrollments.c.unlock_reason,
                _pauses_json(entitlements.c.entitlement_id).label("pauses"),
                _completions_json(entitlements.c.entitlement_id).label("completions"),
            )
            .select_from(
                entitlements.outerjoin(
                    enrollments, enrollments.c.entitlement_id == entitlements.c.entitlement_id
                )
            )
            .where(active)
            # the id breaks ties so pages never overlap or skip
            .order_by(ordering, entitlements.c.entitlement_id)
            .offset(offset)
        )
        if limit is not None:
            query = query.limit(limit)
        total = await self._session.scalar(
            sa.select(sa.func.count()).select_from(entitlements).where(active)
        )
        item_count = await self._session.scalar(
            sa.select(courses.c.workout_item_count).where(courses.c.course_id == course_id)
        )
        rows = [
            EnrollmentRow(
                entitlement_id=r.entitlement_id,
                user_id=r.user_id,
                start_date=r.start_date,
                completed_at=r.completed_at,
                restart_count=r.restart_count,
                last_activity_at=r.last_activity_at,
                completed_items=r.completed_items,
                total_items=item_count or 0,
                unlocked_at=r.unlocked_at,
                unlocked_by=r.unlocked_by,
                unlock_reason=r.unlock_reason,
                pauses=[] if r.pauses is None else PAUSES.decode(r.pauses),
                completions=[] if r.completions is None else _COMPLETIONS.decode(r.completions),
            )
            for r in await self._session.execute(query)
        ]
        return rows, int(total or 0)
