"""The database of one service schema, and the transactions that write the outbox.

An adapter changes state and records the events it publishes in one transaction:

    async with db.unit_of_work() as uow:          # or db.driver_unit_of_work()
        await uow.session.execute(sa.update(courses)...)
        uow.publish(CoursePublished(...), aggregate_id=course.id, aggregate_version=course.version)

The outbox rows commit with the state change (or not at all), and are published as the
transaction ends (the relay publishes what that could not). Both transactions implement
:class:`coursemesh.chassis.transaction.Transaction`; a write that is one statement uses
:meth:`Database.single_statement`. Use cases see none of this: they speak to their ports.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast
from uuid import UUID

import asyncpg
import sqlalchemy as sa
from opentelemetry import propagate
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util.concurrency import greenlet_spawn

from coursemesh.chassis.publisher import ImmediatePublisher, OutboxRow
from coursemesh.chassis.tables import SpineTables, spine_tables
from coursemesh.chassis.transaction import Driver, Record
from coursemesh.contracts import Envelope, Event, encode, envelope, subject_for

_OUTBOX_COLUMNS = (
    "event_id",
    "type",
    "subject",
    "aggregate_id",
    "aggregate_version",
    "body",
    "headers",
)


def outbox_rows_sql(schema: str, first_param: int = 1) -> str:
    """The INSERT of a batch of outbox rows, one array parameter per column from
    ``$first_param`` on (the order of :meth:`StagedEvents.outbox_params`)."""
    e, t, s, a, v, b, h = (f"${first_param + i}" for i in range(len(_OUTBOX_COLUMNS)))
    return f"""
            INSERT INTO "{schema}".outbox ({", ".join(_OUTBOX_COLUMNS)})
            SELECT e, t, s, a, v, b, h::jsonb
              FROM unnest({e}::uuid[], {t}::text[], {s}::text[], {a}::text[], {v}::int[],
                          {b}::bytea[], {h}::text[]) AS u(e, t, s, a, v, b, h)
            RETURNING 1"""


def outbox_insert_sql(schema: str, channel: str | None) -> str:
    """Insert a batch of outbox rows (one array per column) and, with a ``channel``, NOTIFY
    the relays, as one statement."""
    notify = f"pg_notify('{channel}', '')" if channel else "NULL"
    return f"""
        WITH written AS ({outbox_rows_sql(schema)}
        )
        SELECT {notify}, (SELECT count(*) FROM written)
    """


def _staged_envelope(
    payload: Event, *, aggregate_id: str | UUID, aggregate_version: int
) -> Envelope[Event]:
    """The envelope of an event a unit of work publishes, carrying the current trace context."""
    trace: dict[str, str] = {}
    propagate.inject(trace)
    return envelope(
        payload, aggregate_id=aggregate_id, aggregate_version=aggregate_version, trace=trace
    )


def _published_rows(rows: list[tuple[Any, ...]]) -> list[OutboxRow]:
    """What a publish of the rows of ``_outbox_rows`` sends."""
    return [OutboxRow(r[0], r[2], r[3], r[5], r[6]) for r in rows]


def _outbox_rows(staged: list[Envelope[Event]]) -> list[tuple[Any, ...]]:
    """One tuple per staged event, in ``_OUTBOX_COLUMNS`` order (headers as JSON text)."""
    return [
        (
            env.id,
            env.type,
            subject_for(env.type),
            env.aggregate_id,
            env.aggregate_version,
            encode(env),
            json.dumps(env.trace),
        )
        for env in staged
    ]


def outbox_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes the relays of a schema after a commit."""
    return f"{schema}_outbox"


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """``postgresql+asyncpg://…`` -> ``postgresql://…`` for raw asyncpg connections."""
    return (
        sa.engine.make_url(sqlalchemy_url)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


#: Driver errors that say the server is out of reach rather than refusing a statement: class 08
#: (connection exception), 57P01-57P03 (shutting down, crashed, starting up), 53300 (no slot).
_UNREACHABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    # The protocol lost its footing: what a statement meets on a pooled connection that the
    # server's "terminating connection" reached while idle, before the socket's close did
    # (seen under load at a restart). The connection is unusable; no statement is at fault.
    asyncpg.InternalClientError,
    sa.exc.TimeoutError,  # no pooled connection came within the pool timeout
)


def is_connection_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it wraps or arose from) means the database could not be
    used at all: refused, unreachable, not answering within the connect timeout, shutting down
    or starting up, a connection dropped mid-statement, or no pooled connection in time.

    Such a request met the database's absence, not a bug: it is answered 503
    ``DATABASE_UNAVAILABLE`` (:mod:`coursemesh.chassis.errors`). A statement the server refuses
    (a missing column, a constraint) is not one of them.
    """
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, _UNREACHABLE):
            return True
        if isinstance(error, sa.exc.DBAPIError):
            if error.connection_invalidated:  # SQLAlchemy saw the connection die under it
                return True
            if error.orig is not None:
                pending.append(error.orig)
        # What asyncpg raises on a connection it already knows is gone (SQLAlchemy's own test).
        if isinstance(error, asyncpg.InterfaceError) and "connection is closed" in str(error):
            return True
        if isinstance(error, OSError) and _raised_in_driver(error):
            return True
        if isinstance(error, BaseExceptionGroup):
            pending.extend(error.exceptions)
        pending.extend(e for e in (error.__cause__, error.__context__) if e is not None)
    return False


def _raised_in_driver(error: BaseException) -> bool:
    """An ``OSError`` (refused, reset, unreachable host, connect timeout) is the database's
    only when it came up through the driver: the same error from a file or from a call to
    another service is not. asyncpg lets these through unwrapped, and so does SQLAlchemy's
    pool when it opens a connection."""
    tb = error.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("asyncpg."):
            return True
        tb = tb.tb_next
    return False


def _replace_if_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """A pooled connection the server has closed (it restarted, or ended the session) is
    replaced at checkout instead of failing the request that drew it. asyncpg notices a closed
    socket by itself, so this costs no round trip, unlike ``pool_pre_ping``."""
    if dbapi_connection.driver_connection.is_closed():
        raise sa.exc.DisconnectionError("the server closed this pooled connection")


class Database:
    """One engine for one service schema; the schema is the connection's ``search_path``.

    While the server is away, a checkout fails within ``connect_timeout`` (opening a
    connection) or ``pool_timeout`` (waiting for a pooled one) with an error
    :func:`is_connection_failure` recognises; once it is back, connections it closed are
    replaced as they are drawn, so requests succeed again without anyone's help.
    """

    def __init__(
        self,
        url: str,
        schema: str,
        *,
        application_name: str = "coursemesh",
        pool_size: int = 10,
        connect_timeout: float = 3.0,
        pool_timeout: float = 5.0,
        echo: bool = False,
    ) -> None:
        self.url = url
        self.schema = schema
        self.connect_timeout = connect_timeout
        self.pool_timeout = pool_timeout
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            # No overflow: overflow connections are closed when handed back, so a burst wider
            # than the pool would open and close a connection per request, and connecting costs
            # more than a hot request's own work. Requests wait for a pooled connection instead.
            max_overflow=0,
            pool_timeout=pool_timeout,
            pool_pre_ping=False,
            pool_recycle=1800,
            echo=echo,
            connect_args={
                "timeout": connect_timeout,
                "server_settings": {
                    "search_path": f"{schema},public",
                    "application_name": application_name,
                },
            },
        )
        sa.event.listen(self.engine.sync_engine.pool, "checkout", _replace_if_closed)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.spine: SpineTables = spine_tables(sa.MetaData(schema=schema))
        self.channel = outbox_channel(schema)
        self.outbox_insert_sql = outbox_insert_sql(schema, self.channel)
        self.publisher: ImmediatePublisher | None = None
        self._commit_listeners: list[Callable[[], None]] = []
        self._any_commit_listeners: list[Callable[[], None]] = []

    def publish_immediately(self, publisher: ImmediatePublisher) -> None:
        """From now on a commit publishes its events itself (:mod:`coursemesh.chassis.publisher`)
        instead of waking the relays, which only pick up what such a publish left behind."""
        self.publisher = publisher
        self.outbox_insert_sql = outbox_insert_sql(self.schema, None)

    def on_outbox_commit(self, listener: Callable[[], None]) -> None:
        """Called in-process after a commit that wrote outbox rows (the relay's fast wake-up)."""
        self._commit_listeners.append(listener)

    @asynccontextmanager
    async def single_statement(self) -> AsyncIterator[SingleStatement]:
        """A write that is one statement carrying its outbox rows (:class:`SingleStatement`)."""
        write: SingleStatement | None = None
        try:
            async with self.reading() as driver:
                write = SingleStatement(driver, notify=self.publisher is None)
                yield write
        finally:
            if write is not None and write.written:  # committed: the statement ran
                self._committed()
                await self._outbox_written(write.written)

    async def _outbox_written(self, rows: list[tuple[Any, ...]]) -> None:
        if self.publisher is not None:
            await self.publisher.publish(_published_rows(rows))
            return
        for listener in self._commit_listeners:
            listener()

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Called in-process after every unit of work that commits (e.g. to drop read caches,
        so a process always reads its own writes)."""
        self._any_commit_listeners.append(listener)

    def unit_of_work(self) -> UnitOfWork:
        """A transaction on a SQLAlchemy session (:class:`UnitOfWork`)."""
        return UnitOfWork(self)

    def driver_unit_of_work(self) -> DriverUnitOfWork:
        """A transaction on the driver alone (:class:`DriverUnitOfWork`)."""
        return DriverUnitOfWork(self)

    def _committed(self) -> None:
        for listener in self._any_commit_listeners:
            listener()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Driver]:
        """A pooled asyncpg connection for hot read paths, outside any transaction.

        The same pool as the engine, but statements go straight to the driver: no autobegin,
        no BEGIN/ROLLBACK round trips, no SQL compilation: a small SELECT costs a fraction of
        what it costs through ``AsyncConnection.execute``. Use it for single read statements
        whose consistency does not need a transaction; a write that is one statement carrying
        its outbox rows uses :meth:`single_statement`, anything else a unit of work.
        """
        # The pool's connection without the Connection wrapper SQLAlchemy builds and closes
        # around it: that wrapper costs more than the checkout itself.
        raw = await self.engine.raw_connection()
        driver = cast(Driver, raw.driver_connection)
        lost = False
        try:
            yield driver
        except BaseException as exc:
            # A server going away says so before it closes the socket: until asyncpg sees
            # the close, the connection looks open, stuck mid-statement, and would fail the
            # next request that drew it (seen under load: "another operation is in progress").
            lost = is_connection_failure(exc) and not isinstance(exc, sa.exc.TimeoutError)
            raise
        finally:
            # Check-in resets (or, after a dispose, closes) the connection: the greenlet
            # bridge lets that await the driver. SQLAlchemy never saw the statements, so it
            # cannot know a connection died under them: a lost one is discarded here.
            lost = lost or driver.is_closed()
            await greenlet_spawn(raw.invalidate if lost else raw.close)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


class _OutboxTransaction(ABC):
    """What both transactions share: staged events written to the outbox at commit (with the
    NOTIFY where relays publish), after-commit callbacks, the commit listeners, and the publish
    of the events once the connection is back in the pool. Commits on a clean exit, rolls back
    otherwise."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._staged: list[Envelope[Event]] = []
        self._written: list[tuple[Any, ...]] = []
        self._after_commit: list[Callable[[], Awaitable[None] | None]] = []
        self.committed = False

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None and not self.committed:
                await self.commit()
        finally:
            await self._close()
        if self.committed and self._written:
            # Published once the connection is back in the pool: a slow bus never holds one.
            written, self._written = self._written, []
            await self._db._outbox_written(written)

    def publish(
        self,
        payload: Event,
        *,
        aggregate_id: str | UUID,
        aggregate_version: int,
    ) -> Envelope[Event]:
        """Stage an event; it is written to the outbox in this transaction's commit."""
        env = _staged_envelope(
            payload, aggregate_id=aggregate_id, aggregate_version=aggregate_version
        )
        self._staged.append(env)
        return env

    def after_commit(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        """Run ``callback`` once the transaction has committed (never if it rolls back)."""
        self._after_commit.append(callback)

    async def flush_outbox(self) -> None:
        """Write the staged events' outbox rows now (the commit does it otherwise)."""
        if not self._staged:
            return
        rows = _outbox_rows(self._staged)
        await self._write_outbox(rows)
        self._staged.clear()  # written: a second flush (or the commit's) adds nothing
        self._written.extend(rows)

    async def commit(self) -> None:
        await self.flush_outbox()
        await self._commit_transaction()
        self.committed = True
        self._db._committed()
        for callback in self._after_commit:
            result = callback()
            if asyncio.iscoroutine(result):
                await result

    async def _write_outbox(self, rows: list[tuple[Any, ...]]) -> None:
        # Every row plus the NOTIFY (delivered at commit, so relays in other processes wake
        # only for real rows) in one round trip on the driver, without SQL compilation.
        driver = await self.driver()
        await driver.execute(self._db.outbox_insert_sql, *map(list, zip(*rows, strict=True)))

    @abstractmethod
    async def driver(self) -> Driver:
        """The driver connection under this transaction, its transaction begun: for set-based
        statements run straight on the driver (no SQL compilation per call)."""

    @abstractmethod
    async def _commit_transaction(self) -> None: ...

    @abstractmethod
    async def _close(self) -> None:
        """End the transaction (rolled back unless committed) and hand the connection back."""


class UnitOfWork(_OutboxTransaction):
    """A transaction on a SQLAlchemy session (``uow.session``, for Core statements on the
    service's tables) plus the events it publishes; ``await uow.driver()`` reaches the same
    transaction on the driver."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is not open")
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        self._session = self._db.sessions()
        await self._session.begin()
        return self

    async def _close(self) -> None:
        await self.session.close()
        self._session = None

    async def driver(self) -> Driver:
        connection = await self.session.connection()
        driver = cast(Driver, (await connection.get_raw_connection()).driver_connection)
        if not driver.is_in_transaction():
            # SQLAlchemy begins its transaction lazily, at its first statement.
            await self.session.execute(sa.text("SELECT 1"))
        return driver

    async def _commit_transaction(self) -> None:
        await self.session.commit()


class DriverUnitOfWork(_OutboxTransaction):
    """A transaction on the asyncpg driver alone: BEGIN, the caller's statements through
    ``await uow.driver()``, the outbox rows with their NOTIFY, COMMIT; no SQLAlchemy session.

    For set-based writers on hot paths (the consumer's batched runs, where the session's
    begin, statement and commit machinery was half of a small batch's CPU).
    """

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._raw: Any = None
        self._transaction: Any = None

    async def __aenter__(self) -> DriverUnitOfWork:
        # The pool's connection without SQLAlchemy's Connection wrapper, as Database.reading().
        self._raw = await self._db.engine.raw_connection()
        try:
            self._transaction = self._raw.driver_connection.transaction()
            await self._transaction.start()
        except BaseException:
            await greenlet_spawn(self._raw.invalidate)
            raise
        return self

    async def _close(self) -> None:
        # Rolled back here, not by the pool's reset on check-in, which does not know of a
        # transaction begun on the driver; a connection that cannot even roll back is dropped.
        raw, self._raw = self._raw, None
        if raw.driver_connection.is_closed():  # lost, its transaction with it: never pooled
            await greenlet_spawn(raw.invalidate)
            return
        try:
            if raw.driver_connection.is_in_transaction():
                await self._transaction.rollback()
        except BaseException:
            await greenlet_spawn(raw.invalidate)
            raise
        await greenlet_spawn(raw.close)

    async def driver(self) -> Driver:
        driver: Driver = self._raw.driver_connection
        return driver

    async def _commit_transaction(self) -> None:
        await self._transaction.commit()


@dataclass(frozen=True)
class StatementOutbox:
    """The SQL a single statement embeds to write its own outbox rows: ``cte`` (a ``written``
    CTE) among its CTEs and ``tail`` among the columns of its final SELECT. Its parameters
    come after the statement's own: :meth:`SingleStatement.execute` passes them."""

    cte: str
    tail: str


def statement_outbox(schema: str, first_param: int) -> StatementOutbox:
    """The outbox part of a single statement whose own parameters are ``$1…$first_param-1``."""
    notify = first_param + len(_OUTBOX_COLUMNS)
    return StatementOutbox(
        cte=f"written AS ({outbox_rows_sql(schema, first_param=first_param)}\n)",
        tail=(
            "(SELECT count(*) FROM written), "
            f"CASE WHEN ${notify}::bool THEN pg_notify('{outbox_channel(schema)}', '') END"
        ),
    )


class SingleStatement:
    """A write that is one driver statement, run outside any transaction (atomic by itself, so
    no BEGIN and COMMIT round trips), which writes its own outbox rows
    (:func:`statement_outbox`):

        async with db.single_statement() as write:
            facts = await write.driver.fetchrow(READ, ...)   # reads, if any, first
            write.publish(Changed(...), aggregate_id=..., aggregate_version=...)
            await write.execute(WRITE, *args)               # appends the outbox parameters

    Once the block ends the events of a statement that ran are published (or the relays woken),
    and the process's commit listeners called; a statement that raised wrote nothing.
    """

    def __init__(self, driver: Driver, *, notify: bool) -> None:
        self.driver = driver
        self._notify = notify
        self._staged: list[Envelope[Event]] = []
        self.written: list[tuple[Any, ...]] = []

    def publish(
        self,
        payload: Event,
        *,
        aggregate_id: str | UUID,
        aggregate_version: int,
    ) -> Envelope[Event]:
        """Stage an event, with the current trace context, as a transaction does."""
        env = _staged_envelope(
            payload, aggregate_id=aggregate_id, aggregate_version=aggregate_version
        )
        self._staged.append(env)
        return env

    async def execute(self, sql: str, /, *args: object) -> Record | None:
        """Run the statement with ``args``, then the staged events' outbox columns and the
        notify flag; returns its row."""
        if self.written:
            raise RuntimeError("a single-statement write runs one statement")
        rows = _outbox_rows(self._staged)
        columns = [list(column) for column in zip(*rows, strict=True)] or [
            [] for _ in _OUTBOX_COLUMNS
        ]
        row = await self.driver.fetchrow(sql, *args, *columns, self._notify)
        self.written = rows
        return row
