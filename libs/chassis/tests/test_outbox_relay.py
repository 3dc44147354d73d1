"""The relay publishes a claimed batch concurrently across aggregates, one aggregate's events
strictly one after another: a failed publish is never overtaken by a later event of its
aggregate, and the other aggregates are not held up by it."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from coursemesh.chassis.bus import Bus
from coursemesh.chassis.db import Database
from coursemesh.chassis.outbox import OutboxRelay
from coursemesh.chassis.testing import wait_for
from coursemesh.contracts import decode
from coursemesh.contracts.demo import CounterSet


class _FlakyJetStream:
    """Publishes through the real JetStream, except that the first publish of each event in
    ``fail_once`` raises, and a publish of an event in ``hold`` waits until released."""

    def __init__(
        self, js: JetStreamContext, fail_once: set[str], hold: frozenset[str] = frozenset()
    ) -> None:
        self._js = js
        self._fail_once = set(fail_once)
        self._hold = hold
        self.release = asyncio.Event()
        self.holding = asyncio.Event()
        self.attempts: list[str] = []

    async def publish(self, subject: str, payload: bytes, **kw: Any) -> Any:
        event_id = kw["headers"]["Nats-Msg-Id"]
        self.attempts.append(event_id)
        if event_id in self._fail_once:
            self._fail_once.discard(event_id)
            raise TimeoutError("no ack from the stream")
        if event_id in self._hold:
            self.holding.set()
            await self.release.wait()
        return await self._js.publish(subject, payload, **kw)


async def _commit(db: Database, events: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """Commit each (aggregate, version) in its own unit of work; returns their event ids."""
    ids: dict[tuple[str, int], str] = {}
    for aggregate, version in events:
        async with db.unit_of_work() as uow:
            env = uow.publish(
                CounterSet(counter_id=aggregate, value=version),
                aggregate_id=aggregate,
                aggregate_version=version,
            )
        ids[(aggregate, version)] = str(env.id)
    return ids


async def _stream(bus: Bus) -> list[tuple[str, int]]:
    sub = await bus.js.pull_subscribe(
        "demo.>",
        durable=None,
        stream="DEMO",
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    try:
        info = await bus.js.stream_info("DEMO")
        if not info.state.messages:
            return []
        msgs = await sub.fetch(int(info.state.messages), timeout=5)
        return [(e.aggregate_id, e.aggregate_version) for e in map(decode, (m.data for m in msgs))]
    finally:
        await sub.unsubscribe()


async def _rows(db: Database) -> dict[tuple[str, int], tuple[bool, int, str | None]]:
    outbox = db.spine.outbox
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(
                outbox.c.aggregate_id,
                outbox.c.aggregate_version,
                outbox.c.published_at.is_not(None),
                outbox.c.attempts,
                outbox.c.last_error,
            )
        )
        return {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}


async def test_a_failed_publish_holds_back_only_the_later_events_of_its_aggregate(
    producer_db: Database, bus: Bus
) -> None:
    ids = await _commit(producer_db, [("x", 1), ("y", 1), ("x", 2), ("y", 2), ("x", 3)])
    js = _FlakyJetStream(bus.js, fail_once={ids[("x", 2)]})
    relay = OutboxRelay(producer_db, js)  # type: ignore[arg-type]

    assert await relay.publish_batch() == (3, 1)
    # x2 failed: x3 was not even attempted; y went on regardless.
    assert ids[("x", 3)] not in js.attempts
    assert sorted(await _stream(bus)) == [("x", 1), ("y", 1), ("y", 2)]
    rows = await _rows(producer_db)
    published, attempts, error = rows[("x", 2)]
    assert (published, attempts) == (False, 1)
    assert error is not None
    assert "no ack" in error
    assert rows[("x", 3)] == (False, 0, None)
    assert rows[("y", 2)][:2] == (True, 1)

    assert await relay.publish_batch() == (2, 0)  # the retry: x2, then x3
    stream = await _stream(bus)
    assert [v for a, v in stream if a == "x"] == [1, 2, 3]
    assert [v for a, v in stream if a == "y"] == [1, 2]
    assert (await _rows(producer_db))[("x", 2)][:2] == (True, 2)


async def test_aggregates_are_published_concurrently(producer_db: Database, bus: Bus) -> None:
    ids = await _commit(producer_db, [("x", 1), ("y", 1), ("x", 2)])
    js = _FlakyJetStream(bus.js, fail_once=set(), hold=frozenset({ids[("x", 1)]}))
    relay = OutboxRelay(producer_db, js)  # type: ignore[arg-type]
    batch = asyncio.create_task(relay.publish_batch())
    await asyncio.wait_for(js.holding.wait(), timeout=10)
    # While x1 waits for its ack, y1 is published and x2 waits its turn.
    await wait_for(lambda: _stream_is(bus, [("y", 1)]), timeout=10)
    assert ids[("x", 2)] not in js.attempts
    js.release.set()
    assert await asyncio.wait_for(batch, timeout=10) == (3, 0)
    assert [v for a, v in await _stream(bus) if a == "x"] == [1, 2]


async def test_a_relay_stopped_mid_publish_leaves_its_rows_to_the_next(
    producer_db: Database, bus: Bus
) -> None:
    ids = await _commit(producer_db, [("x", 1), ("x", 2)])
    js = _FlakyJetStream(bus.js, fail_once=set(), hold=frozenset({ids[("x", 1)]}))
    stopped = OutboxRelay(producer_db, js)  # type: ignore[arg-type]
    batch = asyncio.create_task(stopped.publish_batch())
    await asyncio.wait_for(js.holding.wait(), timeout=10)
    batch.cancel()
    await asyncio.gather(batch, return_exceptions=True)
    # Its transaction is gone with its connection (the server releases the locks as it ends
    # the session), and the pool hands out only clean connections.
    next_relay = OutboxRelay(producer_db, bus.js)

    async def relayed() -> bool:
        await next_relay.publish_batch()
        return await _stream_is(bus, [("x", 1), ("x", 2)])

    await wait_for(relayed, timeout=10)
    assert all(published for published, _, _ in (await _rows(producer_db)).values())
    async with producer_db.engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT 1")) == 1


async def _stream_is(bus: Bus, expected: list[tuple[str, int]]) -> bool:
    return await _stream(bus) == expected


async def test_a_relay_gets_a_new_connection_after_losing_its_own(
    producer_db: Database, spine_db_url: str, bus: Bus
) -> None:
    relay_db = Database(spine_db_url, producer_db.schema, application_name="lost", pool_size=1)
    try:
        relay = OutboxRelay(relay_db, bus.js)
        await _commit(producer_db, [("x", 1)])
        assert await relay.publish_batch() == (1, 0)  # its one pooled connection is now open
        async with producer_db.engine.connect() as conn:
            await conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'lost'"
                )
            )
        await _commit(producer_db, [("x", 2)])
        outcomes = [await _publish_or_fail(relay) for _ in range(3)]
        # At most one round meets the dead connection; the pool then opens a new one.
        assert outcomes.count("failed") <= 1
        assert (1, 0) in outcomes
        assert [v for _, v in await _stream(bus)] == [1, 2]
    finally:
        await relay_db.dispose()


async def _publish_or_fail(relay: OutboxRelay) -> tuple[int, int] | str:
    try:
        return await relay.publish_batch()
    except Exception:
        return "failed"


async def test_a_running_relay_reconnects_its_own_connection(
    producer_db: Database, bus: Bus, background: Any
) -> None:
    relay = OutboxRelay(producer_db, bus.js, application_name="relay-under-test")
    background(relay.run())
    await _commit(producer_db, [("x", 1)])
    await wait_for(lambda: _stream_is(bus, [("x", 1)]), timeout=10)
    # Its LISTEN connection and the one it publishes with.
    await wait_for(lambda: _connections(producer_db, "relay-under-test", 2), timeout=10)
    async with producer_db.engine.connect() as conn:
        await conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'relay-under-test'"
            )
        )
    await _commit(producer_db, [("x", 2)])
    await wait_for(lambda: _stream_is(bus, [("x", 1), ("x", 2)]), timeout=10)


async def _connections(db: Database, application_name: str, n: int) -> bool:
    async with db.engine.connect() as conn:
        found = await conn.scalar(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": application_name},
        )
    return bool(found == n)
