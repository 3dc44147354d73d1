"""Publishing a transaction's events as soon as it commits, on the request path.

A client that gets a write's response must find the write's events in the stream already: a
negative answer elsewhere waits until its consumer has applied everything the stream held when
the request arrived (:mod:`coursemesh.chassis.consistency`), which covers only what was
published by then. So a unit of work, after its commit, publishes its own outbox rows
(``Nats-Msg-Id`` = event id, as the relay does) before the use case returns, and remembers
where they landed for the response's consistency token.

The relay stays the safety net: rows whose immediate publish failed (or whose process died
between commit and publish) are published by a relay round. Rows published here are marked in
the outbox in batches, off the request path; a relay claims only rows older than a short grace
period, so it does not race the request path for a row that is being published right now.

Order per aggregate: within a process, rows are sent in the order their transactions handed
them over, one transaction's in order. Across processes (replicas), or behind a row whose
publish failed, a stream may hold an aggregate's version 2 before its version 1; every consumer
applies state-carrying events by aggregate version, which makes that harmless
(docs/events.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from nats.js import JetStreamContext
from opentelemetry import propagate, trace

log = logging.getLogger("coursemesh.publisher")
tracer = trace.get_tracer("coursemesh.outbox")

#: How long a relay leaves a fresh outbox row to the request path that wrote it.
IMMEDIATE_GRACE = timedelta(seconds=1)

_MARK = """
UPDATE "{schema}".outbox SET published_at = now(), attempts = attempts + 1
WHERE event_id = ANY($1::uuid[]) AND published_at IS NULL
"""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An event as its outbox row holds it: what a publish sends."""

    event_id: Any
    subject: str
    aggregate_id: str
    body: bytes
    trace_headers: str  # JSON object: the trace context of the write


@dataclass
class Written:
    """The stream positions of the events a request published: ``{stream: last sequence}``."""

    positions: dict[str, int] = field(default_factory=dict)

    def add(self, stream: str, seq: int) -> None:
        if seq > self.positions.get(stream, 0):
            self.positions[stream] = seq


@contextlib.contextmanager
def _producer_span(row: OutboxRow) -> Iterator[None]:
    """A PRODUCER span for publishing ``row``, in the trace of the write that staged it."""
    parent = propagate.extract(json.loads(row.trace_headers))
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
        yield


async def publish_row(js: JetStreamContext, row: OutboxRow, *, timeout: float) -> Any:
    """Publish one outbox row under a PRODUCER span in its write's trace; returns the ack.
    ``Nats-Msg-Id`` = event id: JetStream stores a row published twice (here and by a relay)
    once, and acks both with its one sequence."""
    with _producer_span(row):
        headers: dict[str, str] = {"Nats-Msg-Id": str(row.event_id)}
        propagate.inject(headers)
        return await js.publish(row.subject, row.body, timeout=timeout, headers=headers)


def _fail(done: asyncio.Future[Any], exc: BaseException) -> None:
    if not done.done():
        done.set_exception(exc)
        done.exception()  # retrieved: the request that waits for it may be gone


_written: ContextVar[Written | None] = ContextVar("coursemesh_written", default=None)


@contextlib.contextmanager
def recording_writes() -> Iterator[Written]:
    """Collect, for the current request, where its published events landed."""
    written = Written()
    token = _written.set(written)
    try:
        yield written
    finally:
        _written.reset(token)


class ImmediatePublisher:
    """Publishes committed outbox rows right away and marks them published in batches."""

    def __init__(
        self,
        js: JetStreamContext,
        schema: str,
        *,
        timeout: float = 1.0,
        on_failure: Callable[[], None] | None = None,
        connected: Callable[[], bool] = lambda: True,
        hold: float = 0.0,
        retry_interval: float = 0.1,
    ) -> None:
        self._js = js
        self._connected = connected
        self._hold = hold
        self._retry_interval = retry_interval
        self._timeout = timeout
        self._on_failure = on_failure or (lambda: None)
        self._mark = _MARK.format(schema=schema)
        self._to_mark: list[Any] = []
        self._queue: list[tuple[Sequence[OutboxRow], asyncio.Future[list[Any]]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.published_total = 0
        self.failed_total = 0

    async def publish(self, rows: Sequence[OutboxRow]) -> bool:
        """Publish ``rows`` (one transaction's, in order); False if that did not succeed within
        ``hold`` seconds, in which case the relay publishes them.

        While the bus is away the request waits for it, up to ``hold``: its response then
        carries the events' stream positions, so another service does not answer "not found"
        for a write its client saw succeed (the bus is usually back within a second or two).
        Past ``hold`` the write still succeeds; other services show it once the relay has
        published it.

        Requests that commit meanwhile are published together: one task sends every queued
        row pipelined, in queue order, then awaits the acks (a consumer then gets them in one
        fetch, as it got a relay's batch, instead of one event per transaction)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._hold
        while True:
            acks = await self._publish_once(rows) if self._connected() else None
            if acks is not None:
                break
            if loop.time() >= deadline:
                self.failed_total += 1
                self._on_failure()
                return False
            # The relay's copy, if it publishes first, is deduplicated by Nats-Msg-Id and still
            # acknowledged with its position.
            await asyncio.sleep(min(self._retry_interval, max(0.0, deadline - loop.time())))
        written = _written.get()
        for ack in acks:
            if written is not None:
                written.add(ack.stream, ack.seq)
        self.published_total += len(rows)
        return True

    async def _publish_once(self, rows: Sequence[OutboxRow]) -> list[Any] | None:
        done: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._queue.append((rows, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_queued(), name="immediate-publish")
        try:
            return await asyncio.shield(done)
        except Exception as exc:  # the bus is unreachable or slow
            log.warning("immediate publish failed: %s", exc)
            return None

    async def _send_queued(self) -> None:
        while self._queue:
            queued, self._queue = self._queue, []
            sent: list[tuple[Sequence[OutboxRow], asyncio.Future[list[Any]], list[Any]]] = []
            for rows, done in queued:
                try:
                    sent.append((rows, done, [await self._send(row) for row in rows]))
                except Exception as exc:
                    _fail(done, exc)
            for rows, done, acks in sent:
                try:
                    async with asyncio.timeout(self._timeout):
                        done.set_result(await asyncio.gather(*acks))
                except Exception as exc:
                    _fail(done, exc)
                    continue
                self._to_mark.extend(row.event_id for row in rows)
            if self._to_mark:
                self._wake.set()

    async def _send(self, row: OutboxRow) -> Any:
        """Send one row and return the future of its ack, under its PRODUCER span."""
        with _producer_span(row):
            headers: dict[str, str] = {"Nats-Msg-Id": str(row.event_id)}
            propagate.inject(headers)
            return await self._js.publish_async(row.subject, row.body, headers=headers)

    async def mark_pending(self, conn: Any) -> int:
        """Mark what was published since the last call; returns how many rows."""
        ids, self._to_mark = self._to_mark, []
        if not ids:
            return 0
        try:
            status = await conn.execute(self._mark, ids)
        except BaseException:
            self._to_mark[:0] = ids  # next round; a relay meanwhile re-publishes (de-duplicated)
            raise
        return int(status.split()[-1])

    async def run(self, connect: Callable[[], Any], *, retry_delay: float = 0.5) -> None:
        """Mark published rows until cancelled; ``connect`` yields a pooled connection."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                async with connect() as conn:
                    await self.mark_pending(conn)
            except Exception as exc:
                log.warning("marking published outbox rows failed, will retry: %s", exc)
                await asyncio.sleep(retry_delay)
                self._wake.set()
