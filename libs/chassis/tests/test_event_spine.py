"""The event spine on real PostgreSQL and NATS JetStream, through the demo producer/projector."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from nats.js.api import ConsumerConfig, DeliverPolicy

from coursemesh.chassis.bus import Bus
from coursemesh.chassis.consumer import HEADER_DELIVERIES, HEADER_ERROR, ConsumerRunner
from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.chassis.deadletter import list_dead_letters, replay
from coursemesh.chassis.demo.service import (
    on_counter_set,
    projector_subscriptions,
    set_counter,
)
from coursemesh.chassis.demo.tables import counter_effects, counter_view
from coursemesh.chassis.outbox import OutboxRelay
from coursemesh.chassis.testing import wait_for
from coursemesh.contracts import Envelope, decode, encode, envelope
from coursemesh.contracts.demo import CounterSet


def consumer(db: Database, bus: Bus, **kw: Any) -> ConsumerRunner:
    (sub,) = projector_subscriptions(kw.pop("handler", on_counter_set))
    return ConsumerRunner(consumer="demoprojector", db=db, js=bus.js, subscription=sub, **kw)


async def stream_messages(bus: Bus, stream: str) -> int:
    info = await bus.js.stream_info(stream)
    return int(info.state.messages)


async def view(db: Database) -> dict[str, tuple[int, int]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(sa.select(counter_view))
        return {r.id: (r.value, r.version) for r in rows}


async def effects(db: Database) -> list[Any]:
    async with db.engine.connect() as conn:
        return list(await conn.execute(sa.select(counter_effects).order_by(counter_effects.c.seq)))


async def unpublished(db: Database) -> int:
    outbox = db.spine.outbox
    async with db.engine.connect() as conn:
        q = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        return int((await conn.execute(q)).scalar_one())


async def test_state_change_and_outbox_row_commit_together(producer_db: Database) -> None:
    await set_counter(producer_db, "a", 1)
    assert await unpublished(producer_db) == 1

    class Boom(Exception):
        pass

    try:
        async with producer_db.unit_of_work() as uow:
            uow.publish(CounterSet(counter_id="b", value=1), aggregate_id="b", aggregate_version=1)
            raise Boom
    except Boom:
        pass
    assert await unpublished(producer_db) == 1  # the rolled-back event was never written


async def test_crash_between_commit_and_publish_loses_nothing(
    producer_db: Database, bus: Bus
) -> None:
    # No relay is running: the "process" dies right after committing.
    await set_counter(producer_db, "a", 7)
    await set_counter(producer_db, "a", 8)
    assert await stream_messages(bus, "DEMO") == 0
    # After a restart a new relay finds the committed rows and publishes them.
    restarted = OutboxRelay(producer_db, bus.js)
    assert await restarted.publish_batch() == (2, 0)
    assert await stream_messages(bus, "DEMO") == 2
    assert await unpublished(producer_db) == 0


async def test_crash_after_publish_before_marking_is_deduplicated(
    producer_db: Database, bus: Bus
) -> None:
    await set_counter(producer_db, "a", 1)
    relay = OutboxRelay(producer_db, bus.js)
    # Publish the row but "crash" before the transaction that marks it published commits.
    async with producer_db.engine.connect() as conn:
        row = (await conn.execute(sa.select(producer_db.spine.outbox))).one()
    ack = await bus.js.publish(row.subject, row.body, headers={"Nats-Msg-Id": str(row.event_id)})
    assert ack.duplicate is None
    assert await relay.publish_batch() == (1, 0)
    assert await stream_messages(bus, "DEMO") == 1  # JetStream dropped the re-publish


async def test_relay_wakes_promptly_after_commit(
    producer_db: Database, bus: Bus, background: Any
) -> None:
    relay = OutboxRelay(producer_db, bus.js, poll_interval=60.0)  # polling alone would be too late
    background(relay.run())
    await wait_for(lambda: _listening(producer_db.url, producer_db.channel), timeout=5)
    await set_counter(producer_db, "a", 1)
    await wait_for(lambda: _has_messages(bus, 1), timeout=5)


async def test_relay_in_another_process_is_woken_by_notify(
    producer_db: Database, spine_db_url: str, bus: Bus, background: Any
) -> None:
    other_process_db = Database(spine_db_url, producer_db.schema)  # no shared in-process signal
    try:
        relay = OutboxRelay(other_process_db, bus.js, poll_interval=60.0)
        background(relay.run())
        await wait_for(lambda: _listening(spine_db_url, producer_db.channel), timeout=5)
        await set_counter(producer_db, "a", 1)
        await wait_for(lambda: _has_messages(bus, 1), timeout=5)
    finally:
        await other_process_db.dispose()


async def test_same_event_delivered_twice_has_one_effect(
    projector_db: Database, bus: Bus, background: Any
) -> None:
    env = envelope(CounterSet(counter_id="a", value=5), aggregate_id="a", aggregate_version=1)
    # Two distinct JetStream messages carrying the same event (dedupe window bypassed).
    await bus.js.publish(env.type, encode(env), headers={"Nats-Msg-Id": "copy-1"})
    await bus.js.publish(env.type, encode(env), headers={"Nats-Msg-Id": "copy-2"})
    runner = consumer(projector_db, bus)
    await runner.provision()
    background(runner.run())
    await wait_for(lambda: _processed(runner, 2))
    assert await view(projector_db) == {"a": (5, 1)}
    assert len(await effects(projector_db)) == 1


async def test_versions_out_of_order_leave_the_newest_state(
    projector_db: Database, bus: Bus, background: Any
) -> None:
    for version, value in ((2, 20), (1, 10), (3, 30), (2, 21)):
        env = envelope(
            CounterSet(counter_id="a", value=value), aggregate_id="a", aggregate_version=version
        )
        await bus.js.publish(env.type, encode(env))
    runner = consumer(projector_db, bus)
    await runner.provision()
    background(runner.run())
    await wait_for(lambda: _processed(runner, 4))
    assert await view(projector_db) == {"a": (30, 3)}
    applied = [(e.version, e.applied) for e in await effects(projector_db)]
    assert applied == [(2, True), (1, False), (3, True), (2, False)]


async def test_poison_message_is_dead_lettered_and_later_messages_flow(
    projector_db: Database, bus: Bus, background: Any
) -> None:
    await bus.js.publish("demo.counter.set.v1", b"{not json")
    good = envelope(CounterSet(counter_id="a", value=1), aggregate_id="a", aggregate_version=1)
    await bus.js.publish(good.type, encode(good))
    runner = consumer(projector_db, bus)
    await runner.provision()
    background(runner.run())
    await wait_for(lambda: _view_is(projector_db, {"a": (1, 1)}))
    assert runner.dead_lettered_total == 1
    dead = await _dead_letters(bus)
    assert [m.data for m in dead] == [b"{not json"]
    assert "decode" in dead[0].headers[HEADER_ERROR]


async def test_message_that_keeps_failing_is_dead_lettered_after_max_deliveries(
    projector_db: Database, bus: Bus, background: Any
) -> None:
    attempts: dict[str, int] = {}

    async def flaky(uow: UnitOfWork, env: Envelope[Any]) -> None:
        attempts[env.aggregate_id] = attempts.get(env.aggregate_id, 0) + 1
        if env.aggregate_id == "poison":
            raise RuntimeError("this handler always fails for 'poison'")
        await on_counter_set(uow, env)

    bad = envelope(
        CounterSet(counter_id="poison", value=1), aggregate_id="poison", aggregate_version=1
    )
    good = envelope(CounterSet(counter_id="ok", value=2), aggregate_id="ok", aggregate_version=1)
    await bus.js.publish(bad.type, encode(bad))
    await bus.js.publish(good.type, encode(good))
    runner = consumer(projector_db, bus, handler=flaky, max_deliver=3, backoff_base=0.01)
    await runner.provision()
    background(runner.run())
    await wait_for(lambda: _dead_count(runner, 1), timeout=15)
    await wait_for(lambda: _view_is(projector_db, {"ok": (2, 1)}))
    dead = await _dead_letters(bus)
    assert len(dead) == 1
    assert "always fails" in dead[0].headers[HEADER_ERROR]
    assert dead[0].headers[HEADER_DELIVERIES] == "3"  # parked on the third delivery
    assert attempts["poison"] >= 3
    # The failed attempts left nothing behind: no inbox row, no effect for the poison event.
    assert [e.counter_id for e in await effects(projector_db)] == ["ok"]


async def test_two_relays_and_two_consumers_give_every_effect_once_in_order(
    spine_db_url: str, producer_db: Database, bus: Bus, background: Any
) -> None:
    counters = [f"c{i}" for i in range(8)]
    per_counter = 25
    producers = [Database(spine_db_url, producer_db.schema) for _ in range(2)]
    projectors = [Database(spine_db_url, "demo_projector") for _ in range(2)]
    try:
        for db in producers:
            background(OutboxRelay(db, bus.js, batch_size=20).run())
        runners = [consumer(db, bus) for db in projectors]
        for runner in runners:
            await runner.provision()
            background(runner.run())

        async def write(counter: str) -> None:
            for value in range(1, per_counter + 1):
                await set_counter(random.choice(producers), counter, value)

        await asyncio.gather(*(write(c) for c in counters))
        expected = dict.fromkeys(counters, (per_counter, per_counter))
        await wait_for(lambda: _view_is(projectors[0], expected), timeout=30)
        await wait_for(lambda: _total_processed(runners, len(counters) * per_counter), timeout=30)

        log = await effects(projectors[0])
        assert len(log) == len(counters) * per_counter
        assert len({e.event_id for e in log}) == len(log)  # every event's effect exactly once
        for c in counters:
            applied = [e.version for e in log if e.counter_id == c and e.applied]
            assert applied == sorted(applied)  # applied effects never go backwards
            assert applied[-1] == per_counter
        assert sum(r.processed_total for r in runners) == len(log)
        assert await stream_messages(bus, "DEMO") == len(log)  # no duplicate publishes
    finally:
        for db in (*producers, *projectors):
            await db.dispose()


async def test_relay_keeps_per_aggregate_order_in_the_stream(
    producer_db: Database, bus: Bus
) -> None:
    for value in range(1, 31):
        await set_counter(producer_db, random.choice(["x", "y", "z"]), value)
    relays = [OutboxRelay(producer_db, bus.js, batch_size=7) for _ in range(3)]
    while await unpublished(producer_db):
        await asyncio.gather(*(r.publish_batch() for r in relays))
    sub = await bus.js.pull_subscribe(
        "demo.>",
        durable=None,
        stream="DEMO",
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    msgs = await sub.fetch(30, timeout=5)
    from coursemesh.contracts import decode

    seen: dict[str, list[int]] = {}
    for m in msgs:
        env = decode(m.data)
        seen.setdefault(env.aggregate_id, []).append(env.aggregate_version)
    assert sum(len(v) for v in seen.values()) == 30
    for versions in seen.values():
        assert versions == list(range(1, len(versions) + 1))


async def _has_messages(bus: Bus, n: int) -> bool:
    return await stream_messages(bus, "DEMO") >= n


async def test_an_event_that_meets_the_database_away_waits_for_it_and_is_never_parked(
    projector_db: Database, bus: Bus, background: Any
) -> None:
    import asyncpg

    attempts: list[int] = []

    async def database_away_for_a_while(uow: UnitOfWork, env: Envelope[Any]) -> None:
        attempts.append(1)
        if len(attempts) <= 6:  # twice the deliveries after which a failing event is parked
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
        await on_counter_set(uow, env)

    event = envelope(
        CounterSet(counter_id="late", value=7), aggregate_id="late", aggregate_version=1
    )
    await bus.js.publish(event.type, encode(event))
    runner = consumer(
        projector_db, bus, handler=database_away_for_a_while, max_deliver=3, backoff_base=0.01
    )
    await runner.provision()
    background(runner.run())
    await wait_for(lambda: _view_is(projector_db, {"late": (7, 1)}), timeout=15)
    assert len(attempts) == 7
    assert runner.dead_lettered_total == 0
    assert await _dead_letters(bus) == []


async def _processed(runner: ConsumerRunner, n: int) -> bool:
    return runner.processed_total >= n


async def _total_processed(runners: list[ConsumerRunner], n: int) -> bool:
    return sum(r.processed_total for r in runners) >= n


async def _dead_count(runner: ConsumerRunner, n: int) -> bool:
    return runner.dead_lettered_total >= n


async def _view_is(db: Database, expected: dict[str, tuple[int, int]]) -> bool:
    return await view(db) == expected


async def _listening(url: str, channel: str) -> bool:
    import asyncpg

    from coursemesh.chassis.db import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        n = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE $1", f"%LISTEN%{channel}%"
        )
        return bool(n)
    finally:
        await conn.close()


async def _dead_letters(bus: Bus) -> list[Any]:
    sub = await bus.js.pull_subscribe(
        "deadletter.>",
        durable=None,
        stream="DEADLETTER",
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    try:
        return list(await sub.fetch(10, timeout=2))
    except TimeoutError:
        return []
    finally:
        await sub.unsubscribe()


async def test_dead_letter_can_be_replayed_once_the_cause_is_fixed(
    projector_db: Database, bus: Bus, background: Any
) -> None:
    broken = True

    async def sometimes(uow: UnitOfWork, env: Envelope[Any]) -> None:
        if broken:
            raise RuntimeError("projection bug")
        await on_counter_set(uow, env)

    env = envelope(CounterSet(counter_id="a", value=9), aggregate_id="a", aggregate_version=1)
    await bus.js.publish(env.type, encode(env))
    runner = consumer(projector_db, bus, handler=sometimes, max_deliver=2, backoff_base=0.01)
    await runner.provision()
    background(runner.run())
    await wait_for(lambda: _dead_count(runner, 1), timeout=10)
    (letter,) = await list_dead_letters(bus.js)
    assert (letter.original_subject, letter.consumer) == (env.type, "demoprojector")

    broken = False  # the bug is fixed and deployed
    await replay(bus.js, letter.seq)
    await wait_for(lambda: _view_is(projector_db, {"a": (9, 1)}))
    assert await list_dead_letters(bus.js) == []


async def test_a_failing_message_in_a_batch_leaves_the_others_applied(
    projector_db: Database, bus: Bus
) -> None:
    async def fails_for_b(uow: UnitOfWork, env: Envelope[Any]) -> None:
        await on_counter_set(uow, env)  # writes, then fails: the savepoint must undo it
        uow.publish(
            CounterSet(counter_id="echo", value=1), aggregate_id="echo", aggregate_version=1
        )
        if env.aggregate_id == "b":
            raise RuntimeError("b is broken")

    for counter in ("a", "b", "c"):
        env = envelope(
            CounterSet(counter_id=counter, value=1), aggregate_id=counter, aggregate_version=1
        )
        await bus.js.publish(env.type, encode(env))
    runner = consumer(projector_db, bus, handler=fails_for_b, max_deliver=5)
    await runner.provision()
    psub = await bus.js.pull_subscribe_bind("demoprojector", "DEMO")
    msgs = await psub.fetch(3, timeout=5)
    assert len(msgs) == 3
    await runner.handle_batch(msgs)
    assert await view(projector_db) == {"a": (1, 1), "c": (1, 1)}
    assert [e.counter_id for e in await effects(projector_db)] == ["a", "c"]
    async with projector_db.engine.connect() as conn:
        staged = await conn.scalar(
            sa.select(sa.func.count()).select_from(projector_db.spine.outbox)
        )
    assert staged == 2  # the failed message's staged event was dropped with its savepoint
    assert runner.processed_total == 2
    redelivered = await psub.fetch(1, timeout=5)  # b was nak'ed and comes back alone
    assert decode(redelivered[0].data).aggregate_id == "b"


async def test_published_rows_are_purged_after_the_retention(
    producer_db: Database, bus: Bus
) -> None:
    await set_counter(producer_db, "a", 1)
    await set_counter(producer_db, "a", 2)
    assert await OutboxRelay(producer_db, bus.js).publish_batch() == (2, 0)
    await set_counter(producer_db, "a", 3)  # committed, not yet published
    kept = OutboxRelay(producer_db, bus.js)  # default retention: days
    assert await kept.purge_published() == 0
    eager = OutboxRelay(producer_db, bus.js, retention=timedelta(0))
    assert await eager.purge_published() == 2
    assert await unpublished(producer_db) == 1  # an unpublished row is never purged
