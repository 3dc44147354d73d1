"""The storage ports on the service's database: a transaction is a unit of work (its session
for the stores, its outbox for the events), a read is one driver statement outside any."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.chassis.memberships import DriverStaffDirectory
from coursemesh.learning.adapters.reader import SqlPlayerReader
from coursemesh.learning.adapters.store import SqlStore
from coursemesh.learning.app.courses import CourseReadModel
from coursemesh.learning.app.ports import PlayerTransaction, StaffTransaction


class SqlPlayerStorage:
    """:class:`~coursemesh.learning.app.ports.PlayerStorage` on the database; the reader keeps
    the course read model."""

    def __init__(self, db: Database, courses: CourseReadModel) -> None:
        self._db = db
        self._courses = courses

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PlayerTransaction]:
        async with self._db.unit_of_work() as uow:
            yield PlayerTransaction(store=SqlStore(uow.session), events=uow)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[SqlPlayerReader]:
        async with self._db.reading() as conn:
            yield SqlPlayerReader(conn, self._courses)


class _StaffDirectory:
    """The membership projection, read on the unit of work's own connection when first asked
    (by then the transaction has begun: no extra statement)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool:
        directory = DriverStaffDirectory(await self._uow.driver())
        return await directory.is_staff(organization_id, user_id)


class SqlStaffStorage:
    """:class:`~coursemesh.learning.app.ports.StaffStorage` on the database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StaffTransaction]:
        async with self._db.unit_of_work() as uow:
            yield StaffTransaction(store=SqlStore(uow.session), directory=_StaffDirectory(uow))
