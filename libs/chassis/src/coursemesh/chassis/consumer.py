"""Consumers with an inbox: durable pull consumer per (service, stream), exactly-once effects.

For every message: decode; in one transaction record (consumer, event id) in the inbox and run
the handler (a duplicate finds its inbox row and does nothing); commit; then ack. A transient
error naks with backoff; a message that cannot be decoded, or keeps failing past
``max_deliver``, is copied to the dead-letter stream and acked so the consumer keeps going.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry import propagate, trace

from coursemesh.chassis.bus import STREAM_MAX_AGE_SECONDS
from coursemesh.chassis.consistency import CatchUp, CatchUpFailed
from coursemesh.chassis.db import Database, DriverUnitOfWork, UnitOfWork, is_connection_failure
from coursemesh.chassis.transaction import Transaction
from coursemesh.contracts import (
    Envelope,
    Event,
    EventDecodeError,
    dead_letter_subject,
    decode,
    stream_for_type,
)

log = logging.getLogger("coursemesh.consumer")
tracer = trace.get_tracer("coursemesh.consumer")

Handler = Callable[[UnitOfWork, Envelope[Any]], Awaitable[None]]


@dataclass(frozen=True)
class Batched:
    """A handler that takes, in one call, every consecutive event of its type in a fetched
    batch (in stream order, redeliveries already filtered out by the inbox): a projection can
    then write them with one set-based statement instead of one statement per event.

    It writes through ``await tx.driver()`` of the :class:`Transaction` it is given: a batch made
    only of batched runs is applied in a :class:`~coursemesh.chassis.db.DriverUnitOfWork`."""

    apply: Callable[[Transaction, Sequence[Envelope[Any]]], Awaitable[None]]


AnyHandler = Handler | Batched

HEADER_ORIGINAL_SUBJECT = "Coursemesh-Original-Subject"
HEADER_STREAM_SEQ = "Coursemesh-Stream-Seq"
HEADER_CONSUMER = "Coursemesh-Consumer"
HEADER_ERROR = "Coursemesh-Error"
HEADER_DELIVERIES = "Coursemesh-Deliveries"

# One constant statement for any batch size, run on the driver (no SQL compilation per batch).
_INBOX_INSERT = """
INSERT INTO "{schema}".inbox (consumer, event_id, type)
SELECT $1, u.event_id, u.type FROM unnest($2::uuid[], $3::text[]) AS u(event_id, type)
ON CONFLICT DO NOTHING
RETURNING event_id
"""

#: An inbox row must outlive every delivery of its message: the streams keep a message
#: ``STREAM_MAX_AGE_SECONDS``, so even a consumer reset that replays the whole stream still
#: finds the rows of what it already applied.
INBOX_RETENTION = timedelta(seconds=STREAM_MAX_AGE_SECONDS) + timedelta(days=1)
INBOX_PURGE_INTERVAL_SECONDS = 3600.0

_INBOX_PURGE = """
DELETE FROM "{schema}".inbox
WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM "{schema}".inbox WHERE processed_at < now() - $1::interval LIMIT $2
))
"""


async def purge_inbox(
    db: Database, *, retention: timedelta = INBOX_RETENTION, chunk: int = 10_000
) -> int:
    """Delete inbox rows older than ``retention``, ``chunk`` rows a transaction (no long lock
    on a large table). Returns how many went."""
    deleted = 0
    statement = _INBOX_PURGE.format(schema=db.schema)
    while True:
        async with db.reading() as conn:
            status = await conn.execute(statement, retention, chunk)
        count = int(status.split()[-1])
        deleted += count
        if count < chunk:
            return deleted


async def purge_inbox_periodically(
    db: Database, interval: float = INBOX_PURGE_INTERVAL_SECONDS
) -> None:
    """The service's housekeeping task: purge the inbox now and then every ``interval``."""
    while True:
        removed = await purge_inbox(db)
        if removed:
            log.info("inbox: purged %d rows older than %s", removed, INBOX_RETENTION)
        await asyncio.sleep(interval)


@dataclass
class Subscription:
    """What one service consumes from one stream: event type -> handler.

    ``after``: streams this service also consumes whose events must be applied before this
    stream's (causal order across streams). Learning applies an entitlement only after the
    catalog events that existed by then, so a buyer who holds one also sees the course that
    commerce sold. One direction only: two streams waiting for each other would deadlock.
    """

    stream: str
    handlers: dict[str, AnyHandler] = field(default_factory=dict)
    after: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        handlers: Mapping[type[Event], AnyHandler],
        *,
        after: Mapping[str, Sequence[str]] | None = None,
    ) -> list[Subscription]:
        """Group handlers by the stream their event type lives in; ``after`` maps a stream to
        the streams applied before it."""
        subs: dict[str, Subscription] = {}
        for event_type, handler in handlers.items():
            name = event_type.event_type
            stream = stream_for_type(name)
            subs.setdefault(stream, cls(stream)).handlers[name] = handler
        order = after or {}
        for stream, earlier in order.items():
            if not {stream, *earlier} <= subs.keys() or stream in earlier:
                raise ValueError(f"after: {stream} <- {list(earlier)} names streams not consumed")
            if any(stream in order.get(e, ()) for e in earlier):
                raise ValueError(f"after: {stream} and {list(earlier)} would wait for each other")
            subs[stream].after = tuple(earlier)
        return list(subs.values())


class ConsumerRunner:
    def __init__(
        self,
        *,
        consumer: str,
        db: Database,
        js: JetStreamContext,
        subscription: Subscription,
        max_deliver: int = 5,
        ack_wait: float = 5.0,
        batch: int = 64,
        backoff_base: float = 0.2,
        backoff_cap: float = 10.0,
        catch_up: CatchUp | None = None,
    ) -> None:
        self.consumer = consumer
        self._db = db
        self._js = js
        self._sub = subscription
        self._max_deliver = max_deliver
        self._ack_wait = ack_wait
        self._batch = batch
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self.processed_total = 0
        self.redelivered_total = 0
        self.dead_lettered_total = 0
        self._inbox_insert = _INBOX_INSERT.format(schema=db.schema)
        self._catch_up = catch_up

    @property
    def stream(self) -> str:
        return self._sub.stream

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.consumer,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait,
            # We park a message ourselves after max_deliver; the server must keep redelivering.
            max_deliver=-1,
            filter_subjects=sorted(self._sub.handlers),
            max_ack_pending=1000,
        )

    async def provision(self) -> None:
        """Create or update the durable consumer. Idempotent."""
        config = self.config()
        try:
            await self._js.consumer_info(self.stream, self.consumer)
        except NotFoundError:
            with contextlib.suppress(Exception):  # a concurrent replica may win the race
                await self._js.add_consumer(self.stream, config)
                return
        await self._js.add_consumer(self.stream, config)

    async def run(self) -> None:
        """Fetch and handle messages until cancelled."""
        psub = await self._js.pull_subscribe_bind(self.consumer, self.stream)
        try:
            while True:
                try:
                    msgs = await psub.fetch(self._batch, timeout=1.0)
                except TimeoutError:
                    continue
                except Exception as exc:  # connection trouble: back off, keep going
                    log.warning("consumer %s/%s fetch failed: %s", self.stream, self.consumer, exc)
                    await asyncio.sleep(0.5)
                    continue
                await self.handle_batch(msgs)
        finally:
            with contextlib.suppress(Exception):
                await psub.unsubscribe()

    async def handle(self, msg: Msg) -> None:
        await self.handle_batch([msg])

    async def handle_batch(self, msgs: list[Msg]) -> None:
        """Apply a fetched batch: in one transaction when it all succeeds.

        One transaction per batch instead of one per message (each round trip and commit costs).
        If anything in the batch fails, the batch transaction is rolled back whole and its
        messages are applied one transaction each, so a failing message is retried alone.
        """
        work: list[Work] = []
        self.redelivered_total += sum(1 for msg in msgs if _deliveries(msg) > 1)
        for msg in msgs:
            try:
                env = decode(msg.data)
            except EventDecodeError as exc:
                log.error(
                    "consumer %s: undecodable message on %s: %s", self.consumer, msg.subject, exc
                )
                await self._dead_letter(msg, f"decode: {exc}", _deliveries(msg))
                continue
            handler = self._sub.handlers.get(env.type)
            if handler is None:
                await msg.ack()
                continue
            work.append((msg, env, handler))
        if not work:
            return
        await self._after_earlier_streams()
        error = await self._apply_in_one_transaction(work)
        if error is None:
            await self._acknowledge(work)
            return
        if len(work) == 1:
            await self._retry_or_park(work[0][0], work[0][1], error)
            return
        log.info(
            "consumer %s: batch of %d falls back to one by one: %s", self.consumer, len(work), error
        )
        # One transaction per message: the failed batch (a handler error, or a lock conflict
        # with another replica's batch) was rolled back whole, so nothing of it is applied twice.
        for item in work:
            error = await self._apply_in_one_transaction([item])
            if error is None:
                await self._acknowledge([item])
            else:
                await self._retry_or_park(item[0], item[1], error)

    async def _after_earlier_streams(self) -> None:
        """Wait until the streams of ``Subscription.after`` are applied up to their end."""
        if not self._sub.after or self._catch_up is None:
            return
        try:
            await self._catch_up.wait(streams=self._sub.after)
        except CatchUpFailed as exc:  # availability first: apply, and say so
            log.warning(
                "consumer %s/%s applies before %s caught up: %s",
                self.stream,
                self.consumer,
                ", ".join(self._sub.after),
                exc.detail,
            )

    async def _acknowledge(self, work: list[Work]) -> None:
        # Plain acks, not double acks: a lost ack means a redelivery, which the inbox absorbs.
        for msg, _, _ in work:
            await msg.ack()
        self.processed_total += len(work)
        if self._catch_up is not None:
            self._catch_up.poke(self.stream)

    async def _apply_in_one_transaction(self, work: list[Work]) -> Exception | None:
        """Record the events in the inbox and run the handlers of the newly recorded ones, in
        order, in one transaction; all or nothing. Returns the error that rolled it back."""
        on_driver = all(isinstance(handler, Batched) for _, _, handler in work)
        try:
            async with self._transaction(on_driver) as uow:
                fresh = await self._record(uow, [env for _, env, _ in work])
                todo: list[Work] = []
                for item in work:
                    if item[1].id in fresh:  # else a redelivery, or the event twice in the batch
                        fresh.discard(item[1].id)
                        todo.append(item)
                # Consecutive events of one batched handler make one run; the rest go one by one.
                for handler, group in itertools.groupby(todo, key=lambda item: item[2]):
                    items = [(msg, env) for msg, env, _ in group]
                    if isinstance(handler, Batched):
                        await self._apply_run(uow, handler, items)
                        continue
                    # A run of plain handlers means the batch is on a session (see on_driver).
                    assert isinstance(uow, UnitOfWork)
                    for msg, env in items:
                        with self._span(msg, env):
                            await handler(uow, env)
        except Exception as exc:
            return exc
        return None

    async def _apply_run(
        self, uow: Transaction, handler: Batched, run: list[tuple[Msg, Envelope[Any]]]
    ) -> None:
        """One call for a run of events: each still gets its consumer span (under its
        producer's trace), all spanning the one call."""
        spans = [self._start_span(msg, env) for msg, env in run]
        try:
            with trace.use_span(spans[0], end_on_exit=False):
                await handler.apply(uow, [env for _, env in run])
        finally:
            for span in spans:
                span.end()

    def _transaction(self, on_driver: bool) -> UnitOfWork | DriverUnitOfWork:
        return self._db.driver_unit_of_work() if on_driver else self._db.unit_of_work()

    async def _record(self, uow: Transaction, envs: list[Envelope[Any]]) -> set[Any]:
        """Write the inbox rows with one statement; returns the ids it newly recorded."""
        driver = await uow.driver()
        rows = await driver.fetch(
            self._inbox_insert, self.consumer, [env.id for env in envs], [env.type for env in envs]
        )
        return {row[0] for row in rows}

    def _span(self, msg: Msg, env: Envelope[Any]) -> Any:
        return trace.use_span(self._start_span(msg, env), end_on_exit=True)

    def _start_span(self, msg: Msg, env: Envelope[Any]) -> trace.Span:
        parent = propagate.extract(dict(msg.headers or {}))
        return tracer.start_span(
            f"{msg.subject} process",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": msg.subject,
                "messaging.message.id": str(env.id),
                "messaging.consumer.group.name": self.consumer,
            },
        )

    async def _retry_or_park(self, msg: Msg, env: Envelope[Any], exc: Exception) -> None:
        deliveries = _deliveries(msg)
        if is_connection_failure(exc):
            # The database is away, not the event at fault: it waits for the database, however
            # long that takes, and is never parked for it.
            delay = min(self._backoff_cap, self._backoff_base * 2 ** min(deliveries - 1, 16))
            log.warning(
                "consumer %s: database unavailable, %s %s again in %.1fs: %s",
                self.consumer,
                env.type,
                env.id,
                delay,
                exc,
            )
            await msg.nak(delay=delay)
            return
        if deliveries >= self._max_deliver:
            log.error(
                "consumer %s: %s %s failed %d times, dead-lettered: %s",
                self.consumer,
                env.type,
                env.id,
                deliveries,
                exc,
            )
            await self._dead_letter(msg, f"{type(exc).__name__}: {exc}", deliveries)
            return
        delay = min(self._backoff_cap, self._backoff_base * 2 ** (deliveries - 1))
        log.warning(
            "consumer %s: %s %s failed (delivery %d), retry in %.1fs: %s",
            self.consumer,
            env.type,
            env.id,
            deliveries,
            delay,
            exc,
        )
        await msg.nak(delay=delay)

    async def apply(self, env: Envelope[Any], handler: AnyHandler) -> None:
        """Record the event in the inbox and run its handler in one transaction."""
        if isinstance(handler, Batched):
            async with self._db.driver_unit_of_work() as tx:
                if await self._record(tx, [env]):
                    await handler.apply(tx, [env])
            return
        async with self._db.unit_of_work() as uow:
            if await self._record(uow, [env]):
                await handler(uow, env)

    async def _dead_letter(self, msg: Msg, reason: str, deliveries: int) -> None:
        seq = msg.metadata.sequence.stream
        headers = {
            "Nats-Msg-Id": f"dl:{self.consumer}:{self.stream}:{seq}",
            HEADER_ORIGINAL_SUBJECT: msg.subject,
            HEADER_STREAM_SEQ: str(seq),
            HEADER_CONSUMER: self.consumer,
            HEADER_ERROR: reason[:1000],
            HEADER_DELIVERIES: str(deliveries),
        }
        await self._js.publish(
            dead_letter_subject(self.consumer, self.stream), msg.data, headers=headers
        )
        await msg.ack()
        self.dead_lettered_total += 1


Work = tuple[Msg, Envelope[Any], AnyHandler]


def _deliveries(msg: Msg) -> int:
    return int(msg.metadata.num_delivered or 1)
