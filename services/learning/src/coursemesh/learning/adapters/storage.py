"""The storage ports on the service's database: a transaction is a unit of work (its session
for the stores, its outbox for the events), a read is one driver statement outside any."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.chassis.memberships import DriverStaffDirectory
from coursemesh.contracts import Envelope, Event, envelope
from coursemesh.learning.adapters.reader import SqlPlayerReader, SqlSyncReader
from coursemesh.learning.adapters.store import SqlStore
from coursemesh.learning.adapters.tables import sync_operations
from coursemesh.learning.app.courses import CourseReadModel
from coursemesh.learning.app.ports import PlayerTransaction, StaffTransaction
from coursemesh.learning.domain.sync import OperationOutcome


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
    async def reading(self) -> AsyncIterator[SqlSyncReader]:
        async with self._db.reading() as conn:
            yield SqlSyncReader(conn, self._courses)

    @asynccontextmanager
    async def operation(self, user_id: str, operation_id: uuid.UUID) -> AsyncIterator[_Slot]:
        """The operation's row is claimed first: a concurrent send of the same id waits on it,
        then finds the outcome this transaction committed."""
        async with self._db.unit_of_work() as uow:
            claimed = await uow.session.execute(
                pg_insert(sync_operations)
                .values(user_id=user_id, operation_id=operation_id)
                .on_conflict_do_nothing()
                .returning(sync_operations.c.operation_id)
            )
            replayed = None
            if claimed.first() is None:
                kept = await uow.session.scalar(
                    sa.select(sync_operations.c.outcome).where(
                        sync_operations.c.user_id == user_id,
                        sync_operations.c.operation_id == operation_id,
                    )
                )
                replayed = msgspec.convert(kept, type=OperationOutcome)
            yield _Slot(
                uow=uow,
                user_id=user_id,
                operation_id=operation_id,
                replayed=replayed,
                player=_SavepointStorage(uow, self),
            )


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


class _Staged:
    """Events of a savepoint: handed to the unit of work only when the savepoint is released,
    so a refused operation publishes nothing."""

    def __init__(self) -> None:
        self.staged: list[tuple[Event, str | uuid.UUID, int]] = []

    def publish(
        self, payload: Event, *, aggregate_id: str | uuid.UUID, aggregate_version: int
    ) -> Envelope[Event]:
        self.staged.append((payload, aggregate_id, aggregate_version))
        return envelope(payload, aggregate_id=aggregate_id, aggregate_version=aggregate_version)


class _SavepointStorage:
    """The player's storage inside an operation's transaction: each of its transactions is a
    savepoint of it."""

    def __init__(self, uow: UnitOfWork, outer: SqlPlayerStorage) -> None:
        self._uow = uow
        self._outer = outer

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PlayerTransaction]:
        events = _Staged()
        async with self._uow.session.begin_nested():
            yield PlayerTransaction(store=SqlStore(self._uow.session), events=events)
        for payload, aggregate_id, version in events.staged:
            self._uow.publish(payload, aggregate_id=aggregate_id, aggregate_version=version)

    def reading(self) -> AbstractAsyncContextManager[SqlPlayerReader]:
        return self._outer.reading()


@dataclass(frozen=True, slots=True)
class _Slot:
    uow: UnitOfWork
    user_id: str
    operation_id: uuid.UUID
    replayed: OperationOutcome | None
    player: _SavepointStorage

    async def record(self, outcome: OperationOutcome) -> None:
        await self.uow.session.execute(
            sa.update(sync_operations)
            .where(
                sync_operations.c.user_id == self.user_id,
                sync_operations.c.operation_id == self.operation_id,
            )
            .values(outcome=msgspec.to_builtins(outcome))
        )
