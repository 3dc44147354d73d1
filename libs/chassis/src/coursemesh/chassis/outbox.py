"""The outbox relay: publishes committed outbox rows to JetStream.

- ``Nats-Msg-Id`` = event id, so a re-publish after a crash is de-duplicated by JetStream.
- Several relays may run at once: a relay takes an aggregate's rows under a transaction-scoped
  advisory lock on the aggregate plus ``FOR UPDATE SKIP LOCKED`` row locks, so one aggregate's
  events are published by one relay at a time, in ``seq`` order.
- A failed publish is retried forever with capped exponential backoff; rows never reach a
  terminal "failed" state. Later rows of the same aggregate wait behind it.
- Wake-up: an in-process signal after a local commit, LISTEN/NOTIFY for commits in other
  processes, and a slow poll as a safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import sqlalchemy as sa
from nats.js import JetStreamContext
from opentelemetry import propagate, trace

from coursemesh.chassis.db import Database, asyncpg_dsn
from coursemesh.chassis.notify import listen_forever

log = logging.getLogger("coursemesh.outbox")
tracer = trace.get_tracer("coursemesh.outbox")

PURGE_INTERVAL_SECONDS = 3600.0
_DB_ERRORS = (OSError, sa.exc.SQLAlchemyError, asyncpg.PostgresError)

_CLAIM = """
SELECT seq, event_id, subject, aggregate_id, body, headers
FROM {schema}.outbox
WHERE published_at IS NULL
  AND pg_try_advisory_xact_lock(hashtext('{schema}.outbox'), hashtext(aggregate_id))
ORDER BY seq
LIMIT :limit
FOR UPDATE SKIP LOCKED
"""


@dataclass(frozen=True)
class _Row:
    seq: int
    event_id: str
    subject: str
    aggregate_id: str
    body: bytes
    headers: dict[str, str]


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
    ) -> None:
        self._db = db
        self._js = js
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._publish_timeout = publish_timeout
        self._retention = retention
        self._wake = asyncio.Event()
        self._claim = sa.text(_CLAIM.format(schema=db.schema))
        self._stopping = False
        self.published_total = 0
        db.on_outbox_commit(self.wake)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Publish until cancelled."""
        listener = asyncio.create_task(self._listen(), name="outbox-listen")
        failures = 0
        next_purge = 0.0
        loop = asyncio.get_running_loop()
        try:
            while True:
                if loop.time() >= next_purge:
                    next_purge = loop.time() + PURGE_INTERVAL_SECONDS
                    with contextlib.suppress(*_DB_ERRORS):
                        await self.purge_published()
                self._wake.clear()
                try:
                    published, failed = await self.publish_batch()
                except _DB_ERRORS as exc:
                    log.warning("outbox relay: database unavailable: %s", exc)
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
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def publish_batch(self) -> tuple[int, int]:
        """Claim, publish and mark one batch. Returns (published, failed)."""
        async with self._db.engine.connect() as conn, conn.begin():
            result = await conn.execute(self._claim, {"limit": self._batch_size})
            rows = [_Row(*r) for r in result.all()]
            if not rows:
                return 0, 0
            by_aggregate: dict[str, list[_Row]] = defaultdict(list)
            for row in rows:
                by_aggregate[row.aggregate_id].append(row)
            outcomes = await asyncio.gather(
                *(self._publish_in_order(group) for group in by_aggregate.values())
            )
            published = [seq for ok, _ in outcomes for seq in ok]
            failed = [(seq, err) for _, errs in outcomes for seq, err in errs]
            outbox = self._db.spine.outbox
            if published:
                await conn.execute(
                    sa.update(outbox)
                    .where(outbox.c.seq.in_(published))
                    .values(published_at=sa.func.now(), attempts=outbox.c.attempts + 1)
                )
            for seq, err in failed:
                await conn.execute(
                    sa.update(outbox)
                    .where(outbox.c.seq == seq)
                    .values(attempts=outbox.c.attempts + 1, last_error=err[:500])
                )
        self.published_total += len(published)
        return len(published), len(failed)

    async def _publish_in_order(self, rows: list[_Row]) -> tuple[list[int], list[tuple[int, str]]]:
        done: list[int] = []
        for row in rows:
            try:
                await self._publish(row)
            except Exception as exc:
                log.warning("outbox relay: publish of %s failed: %s", row.event_id, exc)
                # Later rows of this aggregate must not overtake this one.
                return done, [(row.seq, f"{type(exc).__name__}: {exc}")]
            done.append(row.seq)
        return done, []

    async def _publish(self, row: _Row) -> None:
        parent = propagate.extract(row.headers)
        with tracer.start_as_current_span(
            f"{row.subject} publish",
            context=parent,
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": row.subject,
                "messaging.message.id": str(row.event_id),
            },
        ):
            headers: dict[str, str] = {"Nats-Msg-Id": str(row.event_id)}
            propagate.inject(headers)
            await self._js.publish(
                row.subject, row.body, timeout=self._publish_timeout, headers=headers
            )

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
        )
