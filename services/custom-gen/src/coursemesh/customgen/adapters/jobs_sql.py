"""Generation jobs on PostgreSQL: a claim is a unit of work holding the job's row lock
(``FOR UPDATE SKIP LOCKED``) for one step; the course document is locked with ``FOR UPDATE``
while it is read, changed and written back."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.contracts import Envelope, Event
from coursemesh.customgen.adapters.courses_sql import stored_course
from coursemesh.customgen.adapters.tables import custom_courses, generation_jobs, regen_requests
from coursemesh.customgen.app.ports import JobWriter
from coursemesh.customgen.app.views import RegenRequestView
from coursemesh.customgen.domain.course import Checksummed, StoredCourse
from coursemesh.customgen.domain.jobs import Job

_SECONDS_UNTIL_DUE_SQL = """
    SELECT extract(epoch FROM min(next_attempt_at) - now())
      FROM generation_jobs WHERE status = 'pending'
"""


class SqlCourseData:
    """:class:`~coursemesh.customgen.app.ports.CourseDataWriter` in a session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_course_data(self, course_id: uuid.UUID) -> dict[str, Any] | None:
        row = (
            await self._session.execute(
                sa.select(custom_courses.c.data)
                .where(custom_courses.c.id == course_id)
                .with_for_update()
            )
        ).first()
        if row is None:
            return None
        data: dict[str, Any] = json.loads(row.data)
        return data

    async def store_data(self, course_id: uuid.UUID, stored: Checksummed) -> None:
        await self._session.execute(
            sa.update(custom_courses)
            .where(custom_courses.c.id == course_id)
            .values(
                data=stored.text,
                checksum=stored.checksum,
                file_size_bytes=stored.size_bytes,
                updated_at=sa.func.now(),
            )
        )


class SqlJobWriter(SqlCourseData):
    """:class:`~coursemesh.customgen.app.ports.JobWriter`: the claimed job's unit of work."""

    def __init__(self, uow: UnitOfWork, job: Job) -> None:
        super().__init__(uow.session)
        self._uow = uow
        self.job = job

    def publish(
        self, payload: Event, *, aggregate_id: str | uuid.UUID, aggregate_version: int
    ) -> Envelope[Event]:
        return self._uow.publish(
            payload, aggregate_id=aggregate_id, aggregate_version=aggregate_version
        )

    @asynccontextmanager
    async def attempt(self) -> AsyncIterator[None]:
        async with self._session.begin_nested():
            yield

    async def course(self, course_id: uuid.UUID) -> StoredCourse:
        row = (
            await self._session.execute(
                sa.select(custom_courses).where(custom_courses.c.id == course_id)
            )
        ).one()
        return stored_course(row)

    async def _update_course(self, course_id: uuid.UUID, **values: Any) -> None:
        await self._session.execute(
            sa.update(custom_courses).where(custom_courses.c.id == course_id).values(**values)
        )

    async def mark_course_ready(self, course_id: uuid.UUID, version: int) -> None:
        await self._update_course(
            course_id, status="ready", version=version, updated_at=sa.func.now()
        )

    async def set_course_version(self, course_id: uuid.UUID, version: int) -> None:
        await self._update_course(course_id, version=version)

    async def mark_course_failed(self, course_id: uuid.UUID) -> None:
        await self._update_course(course_id, status="failed", updated_at=sa.func.now())

    async def regen_request(self, request_id: uuid.UUID) -> RegenRequestView:
        row = (
            await self._session.execute(
                sa.select(regen_requests).where(regen_requests.c.id == request_id)
            )
        ).one()
        return RegenRequestView(**{f: getattr(row, f) for f in RegenRequestView.__struct_fields__})

    async def _update_regen_request(self, request_id: uuid.UUID, **values: Any) -> None:
        await self._session.execute(
            sa.update(regen_requests).where(regen_requests.c.id == request_id).values(**values)
        )

    async def complete_regen_request(self, request_id: uuid.UUID) -> None:
        await self._update_regen_request(request_id, status="completed", completed_at=sa.func.now())

    async def mark_regen_request_failed(self, request_id: uuid.UUID) -> None:
        await self._update_regen_request(request_id, status="failed", completed_at=sa.func.now())

    async def _update_job(self, **values: Any) -> None:
        await self._session.execute(
            sa.update(generation_jobs)
            .where(generation_jobs.c.id == self.job.id)
            .values(updated_at=sa.func.now(), **values)
        )

    async def advance(self, step: str, *, state: dict[str, Any] | None = None) -> None:
        values: dict[str, Any] = {"step": step, "attempts": 0, "last_error": None}
        if state is not None:
            values["state"] = state
        await self._update_job(**values)

    async def finish(self) -> None:
        await self._update_job(status="done", last_error=None)

    async def retry_later(self, attempts: int, error: str, delay_seconds: float) -> None:
        await self._update_job(
            attempts=attempts,
            last_error=error,
            next_attempt_at=sa.func.now() + timedelta(seconds=delay_seconds),
        )

    async def fail(self, attempts: int, error: str) -> None:
        await self._update_job(
            status="failed", attempts=attempts, failed_step=self.job.step, last_error=error
        )


class SqlJobStore:
    """:class:`~coursemesh.customgen.app.ports.JobStore` on the service's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def claim(self) -> AsyncIterator[JobWriter | None]:
        async with self._db.unit_of_work() as uow:
            row = (
                await uow.session.execute(
                    sa.select(generation_jobs)
                    .where(
                        generation_jobs.c.status == "pending",
                        generation_jobs.c.next_attempt_at <= sa.func.now(),
                    )
                    .order_by(generation_jobs.c.next_attempt_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                yield None
                return
            job = Job(
                id=row.id,
                custom_course_id=row.custom_course_id,
                kind=row.kind,
                regen_request_id=row.regen_request_id,
                step=row.step,
                attempts=row.attempts,
                state=dict(row.state or {}),
            )
            yield SqlJobWriter(uow, job)

    async def seconds_until_due(self) -> float | None:
        async with self._db.reading() as driver:
            due = await driver.fetchval(_SECONDS_UNTIL_DUE_SQL)
        return None if due is None else float(due)
