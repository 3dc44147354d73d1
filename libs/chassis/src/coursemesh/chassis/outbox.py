"""The outbox relay: publishes committed outbox rows to JetStream.

- ``Nats-Msg-Id`` = event id, so a re-publish after a crash is de-duplicated by JetStream.
- Several relays may run at once: a relay takes an aggregate's rows under a transaction-scoped
  advisory lock on the aggregate plus ``FOR UPDATE SKIP LOCKED`` row locks, so one aggregate's
  events are published by one relay at a time, in ``seq`` order.
- Within a claimed batch, different aggregates are published concurrently; one aggregate's
  events are published one at a time, each after the previous one's ack, so a publish that fails
  can never be overtaken by a later event of its aggregate (pipelined publishes on a connection
  would be stored in order, but the ones behind a failure would still be stored).
- A failed publish is retried forever with capped exponential backoff; rows never reach a
  terminal "failed" state. Later rows of the same aggregate wait behind it.
- Wake-up: an in-process signal after a local commit, LISTEN/NOTIFY for commits in other
  processes, and a slow poll as a safety net.
- Where writes publish their own events right after commit (:mod:`~coursemesh.chassis.publisher`,
  every service), the relay claims only rows older than ``grace``: it publishes what an
  immediate publish left behind, and leaves alone the rows a request is publishing right now.
- A running relay keeps its own database connection, outside the service's pool: events keep
  flowing while requests hold every pooled connection, and a round skips the pool's checkout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import sqlalchemy as sa
from nats.js import JetStreamContext

from coursemesh.chassis.db import Database, asyncpg_dsn
from coursemesh.chassis.notify import listen_forever
from coursemesh.chassis.publisher import OutboxRow, publish_row
from coursemesh.chassis.tasks import cancel_and_wait

log = logging.getLogger("coursemesh.outbox")

PURGE_INTERVAL_SECONDS = 3600.0
_DB_ERRORS = (OSError, sa.exc.SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError)

# The relay's statements go straight to the driver: through SQLAlchemy, compiling and wrapping
# them cost about as much CPU as everything else in a round that publishes one event. The
# transaction is begun and ended by hand so that marking and COMMIT share one round trip.
_CLAIM = """
SELECT seq, event_id::text, subject, aggregate_id, body, headers::text
FROM "{schema}".outbox
WHERE published_at IS NULL
  AND created_at < now() - $2::interval
  AND pg_try_advisory_xact_lock(hashtext('{schema}.outbox'), hashtext(aggregate_id))
ORDER BY seq
LIMIT $1
FOR UPDATE SKIP LOCKED
"""
# A simple query, so that COMMIT rides along; ``seqs`` are integers read from the table.
_MARK_PUBLISHED_AND_COMMIT = """
UPDATE "{schema}".outbox SET published_at = now(), attempts = attempts + 1
WHERE seq IN ({seqs});
COMMIT
"""
_MARK_FAILED = """
UPDATE "{schema}".outbox AS o SET attempts = o.attempts + 1, last_error = f.error
FROM unnest($1::bigint[], $2::text[]) AS f(seq, error)
WHERE o.seq = f.seq
"""


@dataclass(frozen=True, slots=True)
class _Row:
    seq: int
    row: OutboxRow

    @property
    def aggregate_id(self) -> str:
        return self.row.aggregate_id


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        js: JetStreamContext,
        *,
        batch_size: int = 500,
        poll_interval: float = 2.0,
        max_backoff: float = 5.0,
        publish_timeout: float = 5.0,
        retention: timedelta = timedelta(days=3),
        application_name: str = "coursemesh-outbox-relay",
        grace: timedelta = timedelta(0),
    ) -> None:
        self._db = db
        self._application_name = application_name
        self._js = js
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._publish_timeout = publish_timeout
        self._retention = retention
        self._grace = grace
        self._wake = asyncio.Event()
        self._claim = _CLAIM.format(schema=db.schema)
        self._mark_published = _MARK_PUBLISHED_AND_COMMIT.format(schema=db.schema, seqs="{seqs}")
        self._mark_failed = _MARK_FAILED.format(schema=db.schema)
        self.published_total = 0
        db.on_outbox_commit(self.wake)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Publish until cancelled."""
        listener = asyncio.create_task(self._listen(), name="outbox-listen")
        conn: Any = None
        failures = 0
        next_purge = 0.0
        loop = asyncio.get_running_loop()
        try:
            while True:
                if loop.time() >= next_purge:
                    next_purge = loop.time() + PURGE_INTERVAL_SECONDS
                    with contextlib.suppress(*_DB_ERRORS):
                        await self.purge_published()
                # Cleared before the claim: a commit during this round wakes the next one.
                self._wake.clear()
                try:
                    if conn is None or conn.is_closed():
                        conn = await asyncpg.connect(
                            asyncpg_dsn(self._db.url),
                            server_settings={"application_name": self._application_name},
                        )
                    published, failed = await self._round(conn)
                except _DB_ERRORS as exc:
                    log.warning("outbox relay: database unavailable: %s", exc)
                    if conn is not None:
                        conn.terminate()  # whatever state it is in; the next round reconnects
                        conn = None
                    published, failed = 0, 1
                if failed:
                    failures += 1
                    await self._wait(min(self._max_backoff, 0.05 * 2**failures))
                    continue
                failures = 0
                if published >= self._batch_size:
                    continue
                await self._wait(self._poll_interval)
        finally:
            if conn is not None:
                conn.terminate()  # the server rolls back a round that was cut short
            await cancel_and_wait([listener])

    async def _wait(self, timeout: float) -> None:
        if self._wake.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def publish_batch(self) -> tuple[int, int]:
        """Claim, publish and mark one batch on a pooled connection (``run`` uses its own).
        Returns (published, failed)."""
        async with self._db.engine.connect() as pooled:
            conn: Any = (await pooled.get_raw_connection()).driver_connection
            try:
                return await self._round(conn)
            finally:
                # SQLAlchemy did not see this transaction nor its errors: never hand back to
                # the pool a connection that is still in it (a round cut short) or lost.
                if conn.is_closed() or conn.is_in_transaction():
                    await pooled.invalidate()

    async def _round(self, conn: Any) -> tuple[int, int]:
        """One transaction: claim, publish, mark. A round cut short by an error leaves the
        transaction open: the caller discards the connection."""
        await conn.execute("BEGIN")
        claimed = await conn.fetch(self._claim, self._batch_size, self._grace)
        rows = [_Row(r[0], OutboxRow(*r[1:])) for r in claimed]
        if not rows:
            await conn.execute("COMMIT")
            return 0, 0
        published, failed = await self._publish_rows(rows)
        if failed:
            await conn.execute(
                self._mark_failed,
                [seq for seq, _ in failed],
                [error[:500] for _, error in failed],
            )
        if published:
            await conn.execute(self._mark_published.format(seqs=",".join(map(str, published))))
        else:
            await conn.execute("COMMIT")
        self.published_total += len(published)
        return len(published), len(failed)

    async def _publish_rows(self, rows: list[_Row]) -> tuple[list[int], list[tuple[int, str]]]:
        by_aggregate: dict[str, list[_Row]] = {}
        for row in rows:
            by_aggregate.setdefault(row.aggregate_id, []).append(row)
        if len(by_aggregate) == 1:  # the common case at a low rate: no task to spawn
            return await self._publish_in_order(rows)
        outcomes = await asyncio.gather(
            *(self._publish_in_order(group) for group in by_aggregate.values())
        )
        published = [seq for ok, _ in outcomes for seq in ok]
        failed = [failure for _, errors in outcomes for failure in errors]
        return published, failed

    async def _publish_in_order(self, rows: list[_Row]) -> tuple[list[int], list[tuple[int, str]]]:
        done: list[int] = []
        for row in rows:
            try:
                await publish_row(self._js, row.row, timeout=self._publish_timeout)
            except Exception as exc:
                log.warning("outbox relay: publish of %s failed: %s", row.row.event_id, exc)
                # Later rows of this aggregate must not overtake this one.
                return done, [(row.seq, f"{type(exc).__name__}: {exc}")]
            done.append(row.seq)
        return done, []

    async def purge_published(self) -> int:
        """Delete rows published longer ago than the retention."""
        outbox = self._db.spine.outbox
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                sa.delete(outbox).where(
                    outbox.c.published_at < sa.func.now() - self._retention,
                )
            )
        return int(result.rowcount or 0)

    async def _listen(self) -> None:
        def wake(_payload: str) -> None:
            self._wake.set()

        # Also woken on every (re)connect: rows committed while nobody listened went unannounced.
        await listen_forever(
            asyncpg_dsn(self._db.url),
            self._db.channel,
            wake,
            on_connected=self._wake.set,
            name="outbox relay",
            application_name=self._application_name,
        )
