"""Batched handlers and the set-based projection upsert, on real PostgreSQL and NATS JetStream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from coursemesh.chassis.bus import Bus
from coursemesh.chassis.consumer import Batched, ConsumerRunner, Subscription
from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.chassis.demo.service import on_counter_set, on_counter_sets
from coursemesh.chassis.demo.tables import counter_effects, counter_view
from coursemesh.chassis.projection import _upsert_many_sql, newest_per_key, upsert_many_if_newer
from coursemesh.contracts import Envelope, encode, envelope
from coursemesh.contracts.demo import CounterSet


def counter_event(counter: str, version: int, value: int) -> Envelope[Any]:
    return envelope(
        CounterSet(counter_id=counter, value=value), aggregate_id=counter, aggregate_version=version
    )


async def view(db: Database) -> dict[str, tuple[int, int]]:
    async with db.engine.connect() as conn:
        return {r.id: (r.value, r.version) for r in await conn.execute(sa.select(counter_view))}


async def effects(db: Database) -> list[tuple[str, int, bool]]:
    query = sa.select(counter_effects).order_by(counter_effects.c.seq)
    async with db.engine.connect() as conn:
        return [(r.counter_id, r.version, r.applied) for r in await conn.execute(query)]


async def fetch_all(bus: Bus, runner: ConsumerRunner, count: int) -> list[Any]:
    await runner.provision()
    psub = await bus.js.pull_subscribe_bind(runner.consumer, runner.stream)
    msgs: list[Any] = []
    while len(msgs) < count:
        msgs += await psub.fetch(count - len(msgs), timeout=5)
    return msgs


class Recorder:
    """A batched handler that records the runs it is given, then projects them."""

    def __init__(self) -> None:
        self.runs: list[list[int]] = []

    async def __call__(self, uow: UnitOfWork, envs: Sequence[Envelope[Any]]) -> None:
        self.runs.append([env.aggregate_version for env in envs])
        await on_counter_sets(uow, envs)


async def test_upsert_many_writes_only_rows_newer_than_the_stored_ones(
    projector_db: Database,
) -> None:
    async with projector_db.unit_of_work() as uow:
        await upsert_many_if_newer(
            uow, counter_view, [{"id": "a", "value": 1, "version": 5}], key=["id"]
        )
    async with projector_db.unit_of_work() as uow:
        written = await upsert_many_if_newer(
            uow,
            counter_view,
            [
                {"id": "a", "value": 2, "version": 4},  # older than the stored 5
                {"id": "b", "value": 3, "version": 1},  # new
                {"id": "b", "value": 9, "version": 3},  # newer than the b above: wins
                {"id": "b", "value": 4, "version": 2},
            ],
            key=["id"],
        )
    assert written == {("b",)}
    assert await view(projector_db) == {"a": (1, 5), "b": (9, 3)}


async def test_upsert_many_rolls_back_with_its_unit_of_work(projector_db: Database) -> None:
    async def write_then_fail() -> None:
        async with projector_db.unit_of_work() as uow:
            await upsert_many_if_newer(
                uow, counter_view, [{"id": "a", "value": 1, "version": 1}], key=["id"]
            )
            raise RuntimeError("the handler failed after writing")

    with pytest.raises(RuntimeError):
        await write_then_fail()
    assert await view(projector_db) == {}


def test_newest_per_key_keeps_the_greatest_version_in_first_seen_order() -> None:
    rows = [
        {"k": "x", "version": 2},
        {"k": "y", "version": 1},
        {"k": "x", "version": 7},
        {"k": "x", "version": 3},
    ]
    assert newest_per_key(rows, ["k"]) == [{"k": "x", "version": 7}, {"k": "y", "version": 1}]


def test_columns_a_batch_cannot_carry_are_refused() -> None:
    table = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("tags", sa.ARRAY(sa.Text)),
        sa.Column("version", sa.Integer),
    )
    with pytest.raises(ValueError, match="tags"):
        _upsert_many_sql(table, ("id", "tags", "version"), ("id",), "version")


async def test_a_fetched_batch_reaches_a_batched_handler_as_one_run(
    projector_db: Database, bus: Bus
) -> None:
    for version, value in ((2, 20), (1, 10), (3, 30)):
        env = counter_event("a", version, value)
        await bus.js.publish(env.type, encode(env))
    env = counter_event("b", 1, 5)
    await bus.js.publish(env.type, encode(env))
    recorder = Recorder()
    (sub,) = Subscription.of({CounterSet: Batched(recorder)})
    runner = ConsumerRunner(consumer="batched", db=projector_db, js=bus.js, subscription=sub)
    await runner.handle_batch(await fetch_all(bus, runner, 4))

    assert recorder.runs == [[2, 1, 3, 1]]  # one call, stream order
    assert await view(projector_db) == {"a": (30, 3), "b": (5, 1)}
    # Within a run only the newest event of a counter is applied (the others were superseded).
    assert await effects(projector_db) == [
        ("a", 2, False),
        ("a", 1, False),
        ("a", 3, True),
        ("b", 1, True),
    ]
    assert runner.processed_total == 4


async def test_a_redelivered_event_does_not_reach_the_batched_handler_again(
    projector_db: Database, bus: Bus
) -> None:
    first, second = counter_event("a", 1, 1), counter_event("a", 2, 2)
    await bus.js.publish(first.type, encode(first), headers={"Nats-Msg-Id": "copy-1"})
    await bus.js.publish(first.type, encode(first), headers={"Nats-Msg-Id": "copy-2"})
    await bus.js.publish(second.type, encode(second))
    recorder = Recorder()
    (sub,) = Subscription.of({CounterSet: Batched(recorder)})
    runner = ConsumerRunner(consumer="batched", db=projector_db, js=bus.js, subscription=sub)
    msgs = await fetch_all(bus, runner, 3)
    await runner.handle_batch(msgs[:1])
    await runner.handle_batch(msgs[1:])

    assert recorder.runs == [[1], [2]]  # the copy of the first event was dropped by the inbox
    assert await effects(projector_db) == [("a", 1, True), ("a", 2, True)]


async def test_a_failing_run_is_retried_event_by_event(projector_db: Database, bus: Bus) -> None:
    for counter in ("a", "b", "c"):
        env = counter_event(counter, 1, 1)
        await bus.js.publish(env.type, encode(env))

    async def fails_with_b(uow: UnitOfWork, envs: Sequence[Envelope[Any]]) -> None:
        await on_counter_sets(uow, envs)
        if any(env.aggregate_id == "b" for env in envs):
            raise RuntimeError("b is broken")

    (sub,) = Subscription.of({CounterSet: Batched(fails_with_b)})
    runner = ConsumerRunner(consumer="batched", db=projector_db, js=bus.js, subscription=sub)
    await runner.handle_batch(await fetch_all(bus, runner, 3))

    assert await view(projector_db) == {"a": (1, 1), "c": (1, 1)}
    assert [counter for counter, _, _ in await effects(projector_db)] == ["a", "c"]
    assert runner.processed_total == 2


async def test_batched_and_per_event_projections_end_in_the_same_view(
    spine_db_url: str, bus: Bus
) -> None:
    events = [counter_event(f"c{n % 5}", n // 5 + 1, n) for n in range(40)]
    for env in reversed(events[10:20]):  # some arrive out of order
        await bus.js.publish(env.type, encode(env))
    for env in events[:10] + events[20:]:
        await bus.js.publish(env.type, encode(env))
    views = []
    for name, handler in (("one", on_counter_set), ("many", Batched(on_counter_sets))):
        db = Database(spine_db_url, "demo_projector")
        async with db.engine.begin() as conn:
            await conn.execute(sa.delete(counter_view))
            await conn.execute(sa.delete(counter_effects))
        (sub,) = Subscription.of({CounterSet: handler})
        runner = ConsumerRunner(consumer=name, db=db, js=bus.js, subscription=sub, batch=16)
        msgs = await fetch_all(bus, runner, 40)
        for start in range(0, 40, 16):
            await runner.handle_batch(msgs[start : start + 16])
        views.append(await view(db))
        await db.dispose()
    assert views[0] == views[1]
    assert views[1] == {f"c{k}": (35 + k, 8) for k in range(5)}
