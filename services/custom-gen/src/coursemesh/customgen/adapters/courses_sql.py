"""The course store on PostgreSQL: reads on the driver outside any transaction, writes in a
unit of work (SQLAlchemy Core on ``tables``), staff checks on the membership projection."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.chassis.memberships import DriverStaffDirectory
from coursemesh.chassis.transaction import Driver, Record
from coursemesh.contracts import Envelope, Event
from coursemesh.customgen.adapters.tables import (
    custom_courses,
    generation_jobs,
    purchases,
    regen_requests,
)
from coursemesh.customgen.app.ports import (
    CourseDocument,
    CourseReader,
    CourseWriter,
    JobProgress,
    NewCourse,
    NewRegenRequest,
    RegenRequestTaken,
)
from coursemesh.customgen.app.views import CourseSummary, PurchaseView, RegenRequestView
from coursemesh.customgen.domain.course import JobKind, StoredCourse
from coursemesh.customgen.domain.purchase import Purchase
from coursemesh.customgen.domain.regen import RegenStatus

_SUMMARY = (
    "id, user_id, organization_id, purchase_id, course_code, title, description, status, "
    "checksum, file_size_bytes, created_at, updated_at"
)
_REGEN = ", ".join(RegenRequestView.__struct_fields__)

_PURCHASES_SQL = """
    SELECT id AS purchase_id, organization_id, offer_id, course_code, offer_title AS title,
           status, custom_course_id, purchased_at
      FROM custom_course_purchases WHERE user_id = $1 ORDER BY purchased_at DESC
"""
_COURSES_OF_BUYER_SQL = (
    f"SELECT {_SUMMARY} FROM custom_courses WHERE user_id = $1 ORDER BY created_at DESC"
)
_COURSES_OF_ORGANIZATION_SQL = (
    f"SELECT {_SUMMARY} FROM custom_courses WHERE organization_id = $1 ORDER BY created_at DESC"
)
_COURSE_DOCUMENT_SQL = (
    f"SELECT {_SUMMARY}, data::text AS data FROM custom_courses WHERE id = $1 AND user_id = $2"
)
_GENERATE_JOB_SQL = """
    SELECT step, status, attempts, failed_step, last_error
      FROM generation_jobs WHERE custom_course_id = $1 AND kind = 'generate' LIMIT 1
"""
_OWNS_COURSE_SQL = "SELECT true FROM custom_courses WHERE id = $1 AND user_id = $2"
_REGEN_OF_COURSE_SQL = (
    f"SELECT {_REGEN} FROM regen_requests WHERE custom_course_id = $1 ORDER BY created_at DESC"
)
_REGEN_OF_ORGANIZATION_SQL = f"""
    SELECT {_REGEN} FROM regen_requests
     WHERE organization_id = $1 AND ($2::text IS NULL OR status = $2) ORDER BY created_at
"""


def _summary(row: Record) -> CourseSummary:
    return CourseSummary(**{k: row[k] for k in CourseSummary.__struct_fields__})


def _regen_view(row: Record | sa.Row[Any]) -> RegenRequestView:
    """From a driver record or a SQLAlchemy row."""
    values = row._mapping if isinstance(row, sa.Row) else row
    return RegenRequestView(**{f: values[f] for f in RegenRequestView.__struct_fields__})


class DriverCourseReader(DriverStaffDirectory):
    """:class:`~coursemesh.customgen.app.ports.CourseReader` on a driver connection."""

    def __init__(self, driver: Driver) -> None:
        super().__init__(driver)
        self._driver = driver

    async def purchases(self, user_id: str) -> list[PurchaseView]:
        rows = await self._driver.fetch(_PURCHASES_SQL, user_id)
        return [PurchaseView(**dict(r.items())) for r in rows]

    async def courses_of_buyer(self, user_id: str) -> list[CourseSummary]:
        return [_summary(r) for r in await self._driver.fetch(_COURSES_OF_BUYER_SQL, user_id)]

    async def courses_of_organization(self, organization_id: uuid.UUID) -> list[CourseSummary]:
        rows = await self._driver.fetch(_COURSES_OF_ORGANIZATION_SQL, organization_id)
        return [_summary(r) for r in rows]

    async def course_document(self, user_id: str, course_id: uuid.UUID) -> CourseDocument | None:
        row = await self._driver.fetchrow(_COURSE_DOCUMENT_SQL, course_id, user_id)
        if row is None:
            return None
        job = await self._driver.fetchrow(_GENERATE_JOB_SQL, course_id)
        return CourseDocument(
            summary=_summary(row),
            data=row["data"],
            job=JobProgress(**dict(job.items())) if job is not None else None,
        )

    async def owns_course(self, user_id: str, course_id: uuid.UUID) -> bool:
        return bool(await self._driver.fetchval(_OWNS_COURSE_SQL, course_id, user_id))

    async def regen_requests_of_course(self, course_id: uuid.UUID) -> list[RegenRequestView]:
        rows = await self._driver.fetch(_REGEN_OF_COURSE_SQL, course_id)
        return [_regen_view(r) for r in rows]

    async def regen_requests_of_organization(
        self, organization_id: uuid.UUID, status: RegenStatus | None
    ) -> list[RegenRequestView]:
        rows = await self._driver.fetch(_REGEN_OF_ORGANIZATION_SQL, organization_id, status)
        return [_regen_view(r) for r in rows]


async def add_job(
    uow: UnitOfWork,
    course_id: uuid.UUID,
    kind: JobKind,
    step: str,
    regen_request_id: uuid.UUID | None = None,
) -> uuid.UUID:
    job_id = uuid.uuid4()
    await uow.session.execute(
        sa.insert(generation_jobs).values(
            id=job_id,
            custom_course_id=course_id,
            kind=kind,
            regen_request_id=regen_request_id,
            step=step,
            status="pending",
        )
    )
    return job_id


def stored_course(row: sa.Row[Any]) -> StoredCourse:
    """A ``custom_courses`` row (its ``data`` read as text) as the domain sees it."""
    return StoredCourse(
        id=row.id,
        user_id=row.user_id,
        organization_id=row.organization_id,
        course_code=row.course_code,
        status=row.status,
        data=json.loads(row.data),
        checksum=row.checksum,
        file_size_bytes=row.file_size_bytes,
        version=row.version,
    )


class SqlCourseWriter:
    """:class:`~coursemesh.customgen.app.ports.CourseWriter` in a unit of work."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._session = uow.session

    def publish(
        self, payload: Event, *, aggregate_id: str | uuid.UUID, aggregate_version: int
    ) -> Envelope[Event]:
        return self._uow.publish(
            payload, aggregate_id=aggregate_id, aggregate_version=aggregate_version
        )

    def after_commit(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        self._uow.after_commit(callback)

    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool:
        directory = DriverStaffDirectory(await self._uow.driver())
        return await directory.is_staff(organization_id, user_id)

    async def lock_purchase(self, purchase_id: uuid.UUID) -> Purchase | None:
        row = (
            await self._session.execute(
                sa.select(purchases).where(purchases.c.id == purchase_id).with_for_update()
            )
        ).first()
        if row is None:
            return None
        return Purchase(
            id=row.id,
            user_id=row.user_id,
            organization_id=row.organization_id,
            course_code=row.course_code,
            offer_title=row.offer_title,
            status=row.status,
            custom_course_id=row.custom_course_id,
        )

    async def add_course(self, course: NewCourse) -> None:
        await self._session.execute(
            sa.insert(custom_courses).values(
                id=course.id,
                user_id=course.user_id,
                organization_id=course.organization_id,
                purchase_id=course.purchase_id,
                course_code=course.course_code,
                title=course.title,
                description=course.description,
                data=course.data.text,
                checksum=course.data.checksum,
                file_size_bytes=course.data.size_bytes,
                status="generating",
                version=1,
            )
        )

    async def mark_purchase_submitted(self, purchase_id: uuid.UUID, course_id: uuid.UUID) -> None:
        await self._session.execute(
            sa.update(purchases)
            .where(purchases.c.id == purchase_id)
            .values(status="submitted", custom_course_id=course_id, updated_at=sa.func.now())
        )

    async def add_job(
        self,
        course_id: uuid.UUID,
        kind: JobKind,
        step: str,
        regen_request_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        return await add_job(self._uow, course_id, kind, step, regen_request_id)

    async def lock_buyer(self, user_id: str) -> None:
        await self._session.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(user_id)))
        )

    async def course_of_buyer(self, user_id: str, course_id: uuid.UUID) -> StoredCourse | None:
        row = (
            await self._session.execute(
                sa.select(custom_courses).where(
                    custom_courses.c.id == course_id, custom_courses.c.user_id == user_id
                )
            )
        ).first()
        return stored_course(row) if row is not None else None

    async def regen_requests_last_24h(self, user_id: str) -> int:
        count: int = (
            await self._session.execute(
                sa.select(sa.func.count())
                .select_from(regen_requests)
                .where(
                    regen_requests.c.user_id == user_id,
                    regen_requests.c.created_at > sa.func.now() - sa.text("interval '1 day'"),
                )
            )
        ).scalar_one()
        return count

    async def add_regen_request(self, request: NewRegenRequest) -> RegenRequestView:
        try:
            async with self._session.begin_nested():
                row = (
                    await self._session.execute(
                        sa.insert(regen_requests)
                        .values(
                            id=request.id,
                            custom_course_id=request.custom_course_id,
                            user_id=request.user_id,
                            organization_id=request.organization_id,
                            audio_id=request.audio_id,
                            reason=request.reason,
                            status="open",
                        )
                        .returning(regen_requests)
                    )
                ).one()
        except IntegrityError:
            raise RegenRequestTaken from None
        return _regen_view(row)

    async def lock_regen_request(
        self, organization_id: uuid.UUID, request_id: uuid.UUID
    ) -> RegenRequestView | None:
        row = (
            await self._session.execute(
                sa.select(regen_requests)
                .where(
                    regen_requests.c.id == request_id,
                    regen_requests.c.organization_id == organization_id,
                )
                .with_for_update()
            )
        ).first()
        return _regen_view(row) if row is not None else None

    async def record_decision(
        self, request_id: uuid.UUID, status: RegenStatus, decided_by: str, note: str | None
    ) -> RegenRequestView:
        row = (
            await self._session.execute(
                sa.update(regen_requests)
                .where(regen_requests.c.id == request_id)
                .values(
                    status=status,
                    decided_by=decided_by,
                    decision_note=note,
                    decided_at=sa.func.now(),
                )
                .returning(regen_requests)
            )
        ).one()
        return _regen_view(row)

    async def bump_course_version(self, course_id: uuid.UUID) -> int:
        version: int = (
            await self._session.execute(
                sa.update(custom_courses)
                .where(custom_courses.c.id == course_id)
                .values(version=custom_courses.c.version + 1)
                .returning(custom_courses.c.version)
            )
        ).scalar_one()
        return version


class SqlCourseStore:
    """:class:`~coursemesh.customgen.app.ports.CourseStore` on the service's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[CourseWriter]:
        async with self._db.unit_of_work() as uow:
            yield SqlCourseWriter(uow)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[CourseReader]:
        async with self._db.reading() as driver:
            yield DriverCourseReader(driver)
