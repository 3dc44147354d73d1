"""Rebuildable projections: a read model restored from the events that feed it.

A service declares, next to its handlers, each projection it can rebuild: the tables it owns
and the handlers that write them (:class:`Projection`, listed as ``PROJECTIONS`` in the
service's ``events`` package). Only *pure* projections belong there: handlers whose only effect
is writing those tables. A handler that also mails, calls out, starts work or changes the
service's own state must not be replayed, so its projection is not declared.

:func:`rebuild` runs in one transaction: lock the tables (readers wait instead of seeing them
empty), empty them, read the projection's subjects from the first sequence of their streams
with a consumer of its own (the service's durable consumer and inbox are never touched), apply
the handlers in stream order, commit. A live consumer's write waits for the commit and then
applies under its version guard, so nothing newer is lost. A stream that no longer holds its
whole history (expired, purged or deleted messages) is refused unless ``force`` is given:
a row comes back from its events still held (most carry their aggregate's whole state, so the
newest is enough); one none of whose events is held any more is lost.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from coursemesh.chassis.consumer import AnyHandler, Batched
from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.chassis.service import package_for
from coursemesh.contracts import Envelope, Event, EventDecodeError, decode, stream_for_type

#: How long the rebuild waits for the tables' lock before giving up (a long reader holds it).
LOCK_TIMEOUT_SECONDS = 10.0
#: How long a fetch may bring nothing while messages are still due before the replay fails.
STALL_SECONDS = 30.0


@dataclass(frozen=True)
class Projection:
    """One rebuildable read model: the tables it owns and the handlers (by event type) that
    are its only writers. ``tables`` are emptied by a rebuild, so they must hold nothing else;
    each handler must write nothing but them, and applying an event the tables already reflect
    must change nothing (a version-guarded upsert): an event a live consumer was applying when
    the rebuild began reaches them twice."""

    name: str
    tables: tuple[sa.Table, ...]
    handlers: Mapping[type[Event], AnyHandler]
    description: str = ""
    #: Handlers of types the live consumer no longer reads but the stream still holds: an
    #: event type superseded by a new version, whose older changes exist only in it.
    history: Mapping[type[Event], AnyHandler] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.tables or not self.handlers:
            raise ValueError(f"projection {self.name}: needs tables and handlers")
        for table in self.tables:
            if not table.primary_key.columns:
                raise ValueError(f"projection {self.name}: {table.name} has no primary key")

    @property
    def live_handlers_by_type(self) -> dict[str, AnyHandler]:
        """The handlers the service's live consumers run too."""
        return {event_type.event_type: h for event_type, h in self.handlers.items()}

    @property
    def handlers_by_type(self) -> dict[str, AnyHandler]:
        """Every handler a rebuild runs: the live ones and the history's."""
        history = {event_type.event_type: h for event_type, h in self.history.items()}
        return {**history, **self.live_handlers_by_type}

    @property
    def streams(self) -> dict[str, list[str]]:
        """Stream -> the projection's subjects in it (a subject is its event type's name)."""
        streams: dict[str, list[str]] = {}
        for name in self.handlers_by_type:
            streams.setdefault(stream_for_type(name), []).append(name)
        return {stream: sorted(subjects) for stream, subjects in streams.items()}


def load_projections(service_name: str) -> dict[str, Projection]:
    """The projections ``coursemesh.<service>.events`` declares in ``PROJECTIONS`` (none when
    it declares nothing), by name."""
    package = package_for(service_name) + ".events"
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError as exc:
        if exc.name != package:  # the package exists and something it imports does not
            raise
        return {}
    declared: Sequence[Projection] = getattr(module, "PROJECTIONS", ())
    return {p.name: p for p in declared}


class RebuildRefused(RuntimeError):
    """A stream no longer holds the projection's whole history; nothing was changed."""

    def __init__(self, histories: Sequence[StreamHistory]) -> None:
        self.histories = tuple(histories)
        gaps = "; ".join(h.describe() for h in histories if not h.complete)
        super().__init__(f"the streams no longer hold the whole history: {gaps}")


class RebuildFailed(RuntimeError):
    """The replay could not complete (an event that does not decode or whose handler fails,
    a lock not granted, a gap in the delivery); the transaction was rolled back."""


@dataclass(frozen=True)
class StreamHistory:
    """What a stream holds of its past, from its state."""

    stream: str
    first_seq: int
    last_seq: int
    messages: int
    deleted: int
    exists: bool = True
    oldest: datetime | None = None  # when the first message it still holds was stored

    @property
    def complete(self) -> bool:
        """Every message ever stored is still there: nothing expired, purged or deleted."""
        if not self.exists:
            return False
        return self.messages == self.last_seq and self.deleted == 0

    def describe(self) -> str:
        if not self.exists:
            return f"stream {self.stream} does not exist"
        if self.complete:
            return f"stream {self.stream} holds all {self.messages} messages"
        gaps = []
        if self.first_seq > 1:
            since = (
                f", the oldest kept from {self.oldest:%Y-%m-%d %H:%M:%S%z}" if self.oldest else ""
            )
            gaps.append(f"sequences before {self.first_seq} are gone (expired or purged{since})")
        if self.deleted:
            gaps.append(f"{self.deleted} deleted")
        held = f"stream {self.stream} holds {self.messages} of {self.last_seq} messages"
        return f"{held}: {', '.join(gaps)}"


async def stream_history(js: JetStreamContext, stream: str) -> StreamHistory:
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return StreamHistory(stream, 0, 0, 0, 0, exists=False)
    state = info.state
    history = StreamHistory(
        stream, state.first_seq, state.last_seq, state.messages, state.num_deleted or 0
    )
    if history.messages == 0 or history.first_seq <= 1:  # no older message to date
        return history
    oldest = None
    with contextlib.suppress(Exception):  # only the report's detail depends on it
        oldest = (await js.get_msg(stream, seq=state.first_seq)).time
    return StreamHistory(
        stream, state.first_seq, state.last_seq, state.messages, history.deleted, oldest=oldest
    )


async def histories(js: JetStreamContext, projection: Projection) -> list[StreamHistory]:
    return [await stream_history(js, stream) for stream in projection.streams]


class RebuildProgress(Protocol):
    """Told what the replay does: each stream as it starts, then every batch applied."""

    def stream(self, name: str, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


@dataclass(frozen=True)
class TableCount:
    table: str
    before: int
    after: int
    vanished: int  # rows held before that no replayed event brought back


@dataclass(frozen=True)
class RebuildReport:
    projection: str
    histories: tuple[StreamHistory, ...]
    read: int  # messages read from the streams
    applied: int  # events handed to the handlers (each event id once)
    duplicates: int  # messages carrying an event already applied (a republished event)
    tables: tuple[TableCount, ...]
    seconds: float

    @property
    def complete(self) -> bool:
        return all(h.complete for h in self.histories)


@dataclass
class _Replay:
    read: int = 0
    applied: int = 0
    duplicates: int = 0
    seen: set[uuid.UUID] = field(default_factory=set)


async def rebuild(
    db: Database,
    js: JetStreamContext,
    projection: Projection,
    *,
    force: bool = False,
    progress: RebuildProgress | None = None,
    batch: int = 256,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
) -> RebuildReport:
    """Empty ``projection``'s tables and replay its events into them, in one transaction.

    Raises :class:`RebuildRefused` (before anything changed) when a stream lacks part of its
    history and ``force`` is not set, :class:`RebuildFailed` when the replay cannot complete.
    """
    began = time.monotonic()
    found = await histories(js, projection)
    if not force and not all(h.complete for h in found):
        raise RebuildRefused(found)  # refused before the lock: readers never wait for it
    replay = _Replay()
    tables = [(n, table, _qualified(table, db.schema)) for n, table in enumerate(projection.tables)]
    names = ", ".join(name for _, _, name in tables)
    async with db.unit_of_work() as uow:
        driver = await uow.driver()
        await driver.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout * 1000)}ms'")
        try:
            await driver.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
        except Exception as exc:
            raise RebuildFailed(f"could not lock {names}: {exc}") from exc
        # The streams' ends are read under the lock: every event a live consumer committed
        # lies below them, and whatever it writes from now on waits for this transaction.
        found = await histories(js, projection)
        if not force and not all(h.complete for h in found):
            raise RebuildRefused(found)
        before = [await _keep_keys(uow, table, name, n) for n, table, name in tables]
        await driver.execute(f"TRUNCATE {names}")
        for history in found:
            await _replay_stream(uow, js, projection, history, replay, progress, batch)
        counts = []
        for n, table, name in tables:
            after = int(await driver.fetchval(f"SELECT count(*) FROM {name}"))
            vanished = int(await driver.fetchval(_vanished_sql(table, name, n)))
            counts.append(TableCount(table.name, before[n], after, vanished))
    return RebuildReport(
        projection=projection.name,
        histories=tuple(found),
        read=replay.read,
        applied=replay.applied,
        duplicates=replay.duplicates,
        tables=tuple(counts),
        seconds=time.monotonic() - began,
    )


def _qualified(table: sa.Table, default_schema: str) -> str:
    return f'"{table.schema or default_schema}"."{table.name}"'


def _key_columns(table: sa.Table) -> str:
    """What identifies a row across a rebuild: the primary key, or, when that is generated
    (an identity a replay numbers anew), the table's first unique key."""
    columns = list(table.primary_key.columns)
    if any(c.identity is not None for c in columns):
        unique = [[c] for c in table.columns if c.unique] + [
            list(k.columns) for k in table.constraints if isinstance(k, sa.UniqueConstraint)
        ]
        columns = next(iter(unique), columns)
    return ", ".join(f'"{c.name}"' for c in columns)


async def _keep_keys(uow: UnitOfWork, table: sa.Table, name: str, n: int) -> int:
    """Copy the table's keys aside (dropped at commit) so the report can tell which rows the
    replay did not bring back; returns how many rows there were."""
    driver = await uow.driver()
    status = await driver.execute(
        f"CREATE TEMP TABLE rebuild_keys_{n} ON COMMIT DROP AS "
        f"SELECT {_key_columns(table)} FROM {name}"
    )
    return int(status.split()[-1])  # "SELECT <rows>"


def _vanished_sql(table: sa.Table, name: str, n: int) -> str:
    keys = _key_columns(table)
    return (
        f"SELECT count(*) FROM (SELECT {keys} FROM rebuild_keys_{n} "
        f"EXCEPT SELECT {keys} FROM {name}) AS gone"
    )


Work = tuple[int, Envelope[Any], AnyHandler]


async def _replay_stream(
    uow: UnitOfWork,
    js: JetStreamContext,
    projection: Projection,
    history: StreamHistory,
    replay: _Replay,
    progress: RebuildProgress | None,
    batch: int,
) -> None:
    """Apply the projection's events of one stream, from its first message up to
    ``history.last_seq``, read by an ephemeral consumer of this replay alone."""
    if not history.exists or history.messages == 0:
        if progress is not None:
            progress.stream(history.stream, 0)
        return
    stream = history.stream
    handlers = projection.handlers_by_type
    name = f"rebuild-{projection.name}-{uuid.uuid4().hex[:12]}"
    config = ConsumerConfig(
        name=name,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.NONE,
        filter_subjects=projection.streams[stream],
        # Ephemeral: the server removes it if this process dies before deleting it.
        inactive_threshold=2 * STALL_SECONDS,
        mem_storage=True,
        num_replicas=1,
    )
    await js.add_consumer(stream, config)
    try:
        total = (await js.consumer_info(stream, name)).num_pending or 0
        if progress is not None:
            progress.stream(stream, total)
        if total == 0:
            return
        psub = await js.pull_subscribe_bind(consumer=name, stream=stream)
        try:
            expected = 1  # the consumer's own sequence: a gap means a message went missing
            quiet_since = time.monotonic()
            done = False
            while not done:
                try:
                    msgs = await psub.fetch(batch, timeout=1.0)
                except TimeoutError:
                    if time.monotonic() - quiet_since > STALL_SECONDS:
                        raise RebuildFailed(
                            f"{stream}: no message for {STALL_SECONDS:.0f}s after "
                            f"{replay.read} of {total}"
                        ) from None
                    continue
                quiet_since = time.monotonic()
                work: list[Work] = []
                read = 0
                for msg in msgs:
                    meta = msg.metadata
                    seq = meta.sequence.stream
                    if seq > history.last_seq:  # published after the lock: the live consumer's
                        done = True
                        break
                    if meta.sequence.consumer != expected:
                        raise RebuildFailed(
                            f"{stream}: delivery {meta.sequence.consumer} where {expected} "
                            "was due: the replay lost messages"
                        )
                    expected += 1
                    read += 1
                    env = _decode(stream, msg)
                    if env.id in replay.seen:  # the same event twice (republished)
                        replay.duplicates += 1
                    else:
                        replay.seen.add(env.id)
                        work.append((seq, env, handlers[env.type]))
                    if seq >= history.last_seq or meta.num_pending == 0:
                        done = True
                        break
                await _apply(uow, stream, work)
                replay.read += read
                replay.applied += len(work)
                if progress is not None and read:
                    progress.advance(read)
        finally:
            with contextlib.suppress(Exception):
                await psub.unsubscribe()
    finally:
        with contextlib.suppress(Exception):
            await js.delete_consumer(stream, name)


def _decode(stream: str, msg: Msg) -> Envelope[Any]:
    try:
        return decode(msg.data)
    except EventDecodeError as exc:
        seq = msg.metadata.sequence.stream
        raise RebuildFailed(
            f"{stream} sequence {seq} ({msg.subject}) does not decode: {exc}"
        ) from exc


async def _apply(uow: UnitOfWork, stream: str, work: list[Work]) -> None:
    """Consecutive events of one batched handler in one call, the others one by one, as the
    live consumer applies them."""
    for handler, group in itertools.groupby(work, key=lambda item: item[2]):
        items = list(group)
        if isinstance(handler, Batched):
            try:
                await handler.apply(uow, [env for _, env, _ in items])
            except Exception as exc:
                first, last = items[0][0], items[-1][0]
                raise RebuildFailed(
                    f"{stream} sequences {first}-{last} ({items[0][1].type}): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            continue
        for seq, env, _ in items:
            try:
                await handler(uow, env)
            except Exception as exc:
                raise RebuildFailed(
                    f"{stream} sequence {seq} ({env.type} {env.id}): {type(exc).__name__}: {exc}"
                ) from exc
