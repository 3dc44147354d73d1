"""Rebuilding a projection from its stream, on real PostgreSQL and NATS JetStream, through the
demo projector: damage restored, a second run changes nothing, a stream missing part of its
history refused (or, forced, what it cannot restore counted), live writes wait for the rebuild
and then apply under their version guard."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from coursemesh.chassis.bus import Bus
from coursemesh.chassis.consumer import Batched, ConsumerRunner
from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.chassis.demo.service import on_counter_set, on_counter_sets, projector_subscriptions
from coursemesh.chassis.demo.tables import counter_effects, counter_view
from coursemesh.chassis.rebuild import Projection, RebuildRefused, rebuild
from coursemesh.chassis.testing import wait_for
from coursemesh.contracts import Envelope, encode, envelope
from coursemesh.contracts.demo import CounterSet

COUNTERS = Projection(
    "counters", tables=(counter_view, counter_effects), handlers={CounterSet: on_counter_set}
)


class Steps:
    """A :class:`~coursemesh.chassis.rebuild.RebuildProgress` that remembers what it was told."""

    def __init__(self) -> None:
        self.streams: list[tuple[str, int]] = []
        self.advanced = 0

    def stream(self, name: str, total: int) -> None:
        self.streams.append((name, total))

    def advance(self, count: int) -> None:
        self.advanced += count


async def publish(bus: Bus, counter_id: str, value: int, version: int) -> Envelope[Any]:
    env: Envelope[Any] = envelope(
        CounterSet(counter_id=counter_id, value=value),
        aggregate_id=counter_id,
        aggregate_version=version,
    )
    await bus.js.publish(env.type, encode(env))
    return env


async def history(bus: Bus) -> list[Envelope[Any]]:
    """Five events for three counters, one of them delivered twice (a republished event)."""
    sent = [
        await publish(bus, "a", 10, 1),
        await publish(bus, "b", 20, 1),
        await publish(bus, "a", 11, 2),
        await publish(bus, "c", 30, 1),
        await publish(bus, "a", 12, 3),
    ]
    await bus.js.publish(sent[1].type, encode(sent[1]), headers={"Nats-Msg-Id": "again"})
    return sent


async def live_consumer(db: Database, bus: Bus, background: Any) -> ConsumerRunner:
    (sub,) = projector_subscriptions()
    runner = ConsumerRunner(consumer="demoprojector", db=db, js=bus.js, subscription=sub)
    await runner.provision()
    background(runner.run())
    return runner


async def view(db: Database) -> dict[str, tuple[int, int]]:
    async with db.engine.connect() as conn:
        return {r.id: (r.value, r.version) for r in await conn.execute(sa.select(counter_view))}


async def effects(db: Database) -> list[tuple[str, int, bool]]:
    query = sa.select(counter_effects).order_by(counter_effects.c.seq)
    async with db.engine.connect() as conn:
        return [(r.counter_id, r.version, r.applied) for r in await conn.execute(query)]


async def damage(db: Database) -> None:
    """A lost row, a row set wrong at a version no event will ever beat, a row of nothing."""
    async with db.engine.begin() as conn:
        await conn.execute(sa.delete(counter_view).where(counter_view.c.id == "a"))
        await conn.execute(
            sa.update(counter_view).where(counter_view.c.id == "b").values(value=-1, version=99)
        )
        await conn.execute(sa.insert(counter_view).values(id="z", value=0, version=1))
        await conn.execute(sa.delete(counter_effects).where(counter_effects.c.counter_id == "c"))


async def durable_state(bus: Bus) -> tuple[Any, ...]:
    info = await bus.js.consumer_info("DEMO", "demoprojector")
    assert info.delivered is not None
    assert info.ack_floor is not None
    return info.delivered.stream_seq, info.ack_floor.stream_seq, info.num_pending


async def inbox_rows(db: Database) -> int:
    async with db.engine.connect() as conn:
        count = sa.select(sa.func.count()).select_from(db.spine.inbox)
        return int((await conn.execute(count)).scalar_one())


EXPECTED_VIEW = {"a": (12, 3), "b": (20, 1), "c": (30, 1)}
EXPECTED_EFFECTS = [("a", 1, True), ("b", 1, True), ("a", 2, True), ("c", 1, True), ("a", 3, True)]


async def test_rebuild_restores_a_damaged_projection_without_touching_the_live_consumer(
    projector_db: Database, bus: Bus, background: Any
) -> None:
    await history(bus)
    runner = await live_consumer(projector_db, bus, background)
    await wait_for(lambda: _view_is(projector_db, EXPECTED_VIEW))
    await wait_for(lambda: _pending_is(bus, 0))
    await damage(projector_db)
    consumer_before, inbox_before = await durable_state(bus), await inbox_rows(projector_db)

    steps = Steps()
    report = await rebuild(projector_db, bus.js, COUNTERS, progress=steps)

    assert await view(projector_db) == EXPECTED_VIEW
    assert await effects(projector_db) == EXPECTED_EFFECTS
    assert (report.read, report.applied, report.duplicates) == (6, 5, 1)
    assert report.complete
    assert steps.streams == [("DEMO", 6)]
    assert steps.advanced == 6
    view_count, effect_count = report.tables
    assert (view_count.table, view_count.before, view_count.after) == ("counter_view", 3, 3)
    assert view_count.vanished == 1  # "z": no event ever made it
    assert (effect_count.before, effect_count.after, effect_count.vanished) == (4, 5, 0)
    # The service's durable consumer and inbox are as they were, and it still runs.
    assert await durable_state(bus) == consumer_before
    assert await inbox_rows(projector_db) == inbox_before
    assert (await bus.js.stream_info("DEMO")).state.consumer_count == 1
    await publish(bus, "a", 13, 4)
    await wait_for(lambda: _view_is(projector_db, {**EXPECTED_VIEW, "a": (13, 4)}))
    assert runner.dead_lettered_total == 0


async def test_a_second_rebuild_changes_nothing_and_a_batched_handler_gives_the_same_rows(
    projector_db: Database, bus: Bus
) -> None:
    await history(bus)
    await rebuild(projector_db, bus.js, COUNTERS)
    first = (await view(projector_db), await effects(projector_db))
    again = await rebuild(projector_db, bus.js, COUNTERS)
    assert (await view(projector_db), await effects(projector_db)) == first
    assert [(t.before, t.after, t.vanished) for t in again.tables] == [(3, 3, 0), (5, 5, 0)]

    batched = Projection(
        "counters", tables=COUNTERS.tables, handlers={CounterSet: Batched(on_counter_sets)}
    )
    await rebuild(projector_db, bus.js, batched, batch=2)  # runs of two: still the same rows
    assert (
        (await view(projector_db), await effects(projector_db))
        == first
        == (
            EXPECTED_VIEW,
            EXPECTED_EFFECTS,
        )
    )


async def test_a_stream_missing_messages_is_refused_and_nothing_changes(
    projector_db: Database, bus: Bus
) -> None:
    await history(bus)
    await rebuild(projector_db, bus.js, COUNTERS)
    await damage(projector_db)
    damaged = (await view(projector_db), await effects(projector_db))
    await bus.js.delete_msg("DEMO", 4)  # c's only event

    with pytest.raises(RebuildRefused) as refused:
        await rebuild(projector_db, bus.js, COUNTERS)
    assert "holds 5 of 6 messages: 1 deleted" in str(refused.value)
    assert (await view(projector_db), await effects(projector_db)) == damaged

    forced = await rebuild(projector_db, bus.js, COUNTERS, force=True)
    assert not forced.complete
    assert await view(projector_db) == {"a": (12, 3), "b": (20, 1)}
    view_count = forced.tables[0]
    assert (view_count.before, view_count.after, view_count.vanished) == (3, 2, 2)  # c and z


async def test_expired_history_is_refused_with_where_it_now_starts(
    projector_db: Database, bus: Bus
) -> None:
    await history(bus)
    await bus.js.purge_stream("DEMO", seq=3)  # what expiry leaves: the stream starts later

    with pytest.raises(RebuildRefused) as refused:
        await rebuild(projector_db, bus.js, COUNTERS)
    (gone,) = refused.value.histories
    assert (gone.first_seq, gone.last_seq, gone.messages, gone.complete) == (3, 6, 4, False)
    assert "sequences before 3 are gone" in str(refused.value)
    assert await view(projector_db) == {}


async def test_live_writes_and_readers_wait_for_the_rebuild_then_apply_by_version(
    projector_db: Database, bus: Bus, background: Any
) -> None:
    await history(bus)
    runner = await live_consumer(projector_db, bus, background)
    await wait_for(lambda: _view_is(projector_db, EXPECTED_VIEW))
    await damage(projector_db)
    inside, release = asyncio.Event(), asyncio.Event()

    async def held(uow: UnitOfWork, env: Envelope[Any]) -> None:
        inside.set()
        await release.wait()
        await on_counter_set(uow, env)

    paused = Projection("counters", tables=COUNTERS.tables, handlers={CounterSet: held})
    rebuilding = asyncio.ensure_future(rebuild(projector_db, bus.js, paused))
    await asyncio.wait_for(inside.wait(), 10)
    # Mid-rebuild, the tables are empty inside its transaction; a reader waits on the lock
    # instead of seeing that, and a new event's write waits too.
    assert not await _readable_within(projector_db, 0.2)
    await publish(bus, "b", 21, 2)
    await publish(bus, "a", 11, 2)  # stale: the rebuild's a@3 must survive it
    await wait_for(lambda: _delivered(bus, 7))  # the live consumer holds it, waiting
    release.set()
    report = await asyncio.wait_for(rebuilding, 10)

    assert report.read == 6  # the stream's end under the lock: the new events are the consumer's
    await wait_for(lambda: _view_is(projector_db, {**EXPECTED_VIEW, "b": (21, 2)}))
    await wait_for(lambda: _processed(runner, 8))
    assert (await view(projector_db))["a"] == (12, 3)


async def _view_is(db: Database, expected: dict[str, tuple[int, int]]) -> bool:
    return await view(db) == expected


async def _pending_is(bus: Bus, n: int) -> bool:
    info = await bus.js.consumer_info("DEMO", "demoprojector")
    return bool(info.num_pending == n and info.num_ack_pending == 0)


async def _delivered(bus: Bus, seq: int) -> bool:
    info = await bus.js.consumer_info("DEMO", "demoprojector")
    return info.delivered is not None and bool(info.delivered.stream_seq >= seq)


async def _processed(runner: ConsumerRunner, n: int) -> bool:
    return runner.processed_total >= n


async def _readable_within(db: Database, seconds: float) -> bool:
    """Whether a plain read of the view answers within ``seconds`` (False: it waited on a lock)."""
    async with db.engine.connect() as conn:
        await conn.execute(sa.text(f"SET LOCAL lock_timeout = '{int(seconds * 1000)}ms'"))
        try:
            await conn.execute(sa.select(counter_view))
        except sa.exc.DBAPIError as exc:
            if "lock timeout" not in str(exc):
                raise
            return False
        return True
