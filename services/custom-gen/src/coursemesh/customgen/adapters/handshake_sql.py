"""The handshake's reads: plain driver statements on one pooled connection, outside any
transaction (the handshake runs at every app start of every client), no SQLAlchemy."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import msgspec

from coursemesh.chassis.db import Database
from coursemesh.chassis.transaction import Driver
from coursemesh.customgen.app.ports import HandshakeReader
from coursemesh.customgen.app.views import SyncedCourse

# One row whatever the number of courses: two arrays in the same (unspecified) order.
_CHECKSUMS_SQL = """
    SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(checksum), '{}')
      FROM custom_courses WHERE user_id = $1 AND status = 'ready'
"""
_COURSES_SQL = """
    SELECT id, course_code, title, description, checksum, file_size_bytes, updated_at,
           data::text AS data
      FROM custom_courses WHERE id = ANY($1::uuid[])
"""


class DriverHandshakeReader:
    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def ready_checksums(self, user_id: str) -> tuple[Sequence[uuid.UUID], Sequence[str]]:
        row = await self._driver.fetchrow(_CHECKSUMS_SQL, user_id)
        assert row is not None  # an aggregate without GROUP BY always answers one row
        ids, checksums = row
        return ids, checksums

    async def synced_courses(self, course_ids: Sequence[uuid.UUID]) -> list[SyncedCourse]:
        return [
            SyncedCourse(
                id=r["id"],
                course_code=r["course_code"],
                title=r["title"],
                description=r["description"],
                checksum=r["checksum"],
                file_size_bytes=r["file_size_bytes"],
                updated_at=r["updated_at"],
                data=msgspec.Raw(r["data"].encode()),
            )
            for r in await self._driver.fetch(_COURSES_SQL, course_ids)
        ]


class DriverHandshakeStore:
    """:class:`~coursemesh.customgen.app.ports.HandshakeStore` on ``Database.reading()``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[HandshakeReader]:
        async with self._db.reading() as driver:
            yield DriverHandshakeReader(driver)
