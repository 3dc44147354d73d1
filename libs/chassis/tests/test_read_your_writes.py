"""Read-your-writes on real PostgreSQL and JetStream: writes publish before they return, waits
for a consumer to catch up, and the HTTP middleware that holds negative answers until then."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa
from litestar import Litestar, Request, get, post
from litestar.middleware.base import DefineMiddleware
from litestar.params import JSONBody

from coursemesh.chassis.bus import Bus
from coursemesh.chassis.consistency import (
    CONSISTENT_READ,
    CatchUp,
    CatchUpFailed,
    CatchUpSlot,
    ConsistencyMiddleware,
    InvalidToken,
    StreamWatch,
    format_token,
    parse_tokens,
)
from coursemesh.chassis.consumer import ConsumerRunner, Subscription
from coursemesh.chassis.db import Database, statement_outbox
from coursemesh.chassis.demo.service import on_counter_set, projector_subscriptions, set_counter
from coursemesh.chassis.demo.tables import counter_view
from coursemesh.chassis.errors import NotFound, exception_handlers, mark_negative
from coursemesh.chassis.outbox import OutboxRelay
from coursemesh.chassis.publisher import IMMEDIATE_GRACE, ImmediatePublisher, recording_writes
from coursemesh.chassis.testing import wait_for
from coursemesh.contracts.demo import CounterSet

Start = Callable[[Awaitable[Any]], asyncio.Task[Any]]
CONSUMER = "demoprojector"


def consumer(db: Database, bus: Bus, catch_up: CatchUp | None = None) -> ConsumerRunner:
    (sub,) = projector_subscriptions(on_counter_set)
    return ConsumerRunner(consumer=CONSUMER, db=db, js=bus.js, subscription=sub, catch_up=catch_up)


async def provisioned(db: Database, bus: Bus) -> ConsumerRunner:
    """The projector's durable consumer, created but not running (the projection lags)."""
    runner = consumer(db, bus)
    await runner.provision()
    return runner


def watching(bus: Bus, **limits: Any) -> CatchUp:
    """A catch-up on the projector's consumer of the DEMO stream."""
    return CatchUp([StreamWatch(bus.js, "DEMO", CONSUMER)], **limits)


def immediate(db: Database, bus: Bus) -> ImmediatePublisher:
    publisher = ImmediatePublisher(bus.js, db.schema)
    db.publish_immediately(publisher)
    return publisher


async def view(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(sa.select(counter_view))
        return {r.id: r.value for r in rows}


async def unpublished(db: Database) -> int:
    async with db.reading() as conn:
        return int(
            await conn.fetchval(
                f'SELECT count(*) FROM "{db.schema}".outbox WHERE published_at IS NULL'
            )
        )


async def stream_end(bus: Bus) -> int:
    return int((await bus.js.stream_info("DEMO")).state.last_seq)


# --- writes publish before they return ------------------------------------------------------------


async def test_a_commit_publishes_its_events_before_the_write_returns(
    producer_db: Database, bus: Bus, background: Start
) -> None:
    publisher = immediate(producer_db, bus)
    with recording_writes() as written:
        await set_counter(producer_db, "a", 1)
        await set_counter(producer_db, "a", 2)
    # No relay runs: the stream holds both events because the writes published them.
    assert await stream_end(bus) == 2
    assert written.positions == {"DEMO": 2}  # where they landed: the response's token
    assert await unpublished(producer_db) == 2  # marked off the request path
    async with producer_db.reading() as conn:
        assert await publisher.mark_pending(conn) == 2
    assert await unpublished(producer_db) == 0
    # A relay finds nothing left to publish: no second copy.
    relay = OutboxRelay(producer_db, bus.js, grace=IMMEDIATE_GRACE)
    assert await relay.publish_batch() == (0, 0)
    assert await stream_end(bus) == 2


async def test_concurrent_writes_are_published_together_each_learning_its_position(
    producer_db: Database, bus: Bus
) -> None:
    immediate(producer_db, bus)

    async def write(n: int) -> int:
        with recording_writes() as written:
            await set_counter(producer_db, f"c{n}", n)
        return written.positions["DEMO"]

    positions = await asyncio.gather(*(write(n) for n in range(50)))
    assert sorted(positions) == list(range(1, 51))  # every write knows where its event is
    assert await stream_end(bus) == 50


async def test_a_failed_immediate_publish_is_left_to_the_relay(
    producer_db: Database, bus: Bus, nats_url: str
) -> None:
    closed = await Bus.connect(nats_url, "closed")
    await closed.close()
    woken: list[str] = []
    publisher = ImmediatePublisher(
        closed.js, producer_db.schema, on_failure=lambda: woken.append("relay")
    )
    producer_db.publish_immediately(publisher)
    await set_counter(producer_db, "a", 1)  # the write itself succeeds
    assert woken == ["relay"]
    assert (publisher.failed_total, await stream_end(bus)) == (1, 0)
    relay = OutboxRelay(producer_db, bus.js, grace=IMMEDIATE_GRACE)
    assert await relay.publish_batch() == (0, 0)  # too fresh: a request may be publishing it

    async def published() -> bool:
        return await relay.publish_batch() == (1, 0)

    await wait_for(published, timeout=10, message="the relay publishes it after the grace")
    assert await stream_end(bus) == 1


async def test_a_single_statement_write_publishes_too(producer_db: Database, bus: Bus) -> None:
    immediate(producer_db, bus)
    outbox = statement_outbox(producer_db.schema, first_param=1)
    sql = f"WITH {outbox.cte} SELECT {outbox.tail}"
    with recording_writes() as written:
        async with producer_db.single_statement() as write:
            write.publish(
                CounterSet(counter_id="s", value=1), aggregate_id="s", aggregate_version=1
            )
            row = await write.execute(sql)
            assert row is not None
            assert row[0] == 1
            assert row[1] is None  # no NOTIFY: the commit publishes, no relay needs waking
    assert written.positions == {"DEMO": 1}


# --- waiting for a consumer -----------------------------------------------------------------------


async def test_catch_up_waits_until_the_consumer_applied_what_the_stream_held(
    producer_db: Database, projector_db: Database, bus: Bus, background: Start
) -> None:
    immediate(producer_db, bus)
    runner = await provisioned(projector_db, bus)
    await set_counter(producer_db, "a", 5)
    catch_up = watching(bus, timeout=0.3)
    with pytest.raises(CatchUpFailed, match="not caught up with DEMO"):
        await catch_up.wait()  # nobody applies it: bounded, then a clear failure
    assert await view(projector_db) == {}
    background(runner.run())
    catch_up.timeout = 10
    await catch_up.wait()
    assert await view(projector_db) == {"a": 5}  # returned only once applied
    started = time.monotonic()
    await catch_up.wait()  # caught up: answered by one look
    assert time.monotonic() - started < 1
    assert catch_up.waiting == 0
    await catch_up.close()


async def test_a_consumer_that_looks_idle_is_not_taken_at_its_word(
    producer_db: Database, projector_db: Database, bus: Bus, background: Start
) -> None:
    """The server updates a consumer's pending counts after it acknowledges a publish: for a
    moment a consumer reads as idle while the event a client just wrote is in the stream. The
    wait goes by the ack floor and the stream's own messages instead."""
    immediate(producer_db, bus)
    runner = await provisioned(projector_db, bus)
    before_the_write = await bus.js.consumer_info("DEMO", CONSUMER)
    assert not before_the_write.num_pending
    assert not before_the_write.num_ack_pending
    await set_counter(producer_db, "s", 3)
    original = bus.js.consumer_info

    async def lagging(*args: Any, **kw: Any) -> Any:
        return before_the_write

    bus.js.consumer_info = lagging  # type: ignore[method-assign]
    catch_up = watching(bus, timeout=0.3)
    with pytest.raises(CatchUpFailed, match="not caught up with DEMO"):
        await catch_up.wait()
    bus.js.consumer_info = original  # type: ignore[method-assign]
    background(runner.run())
    catch_up.timeout = 10
    await catch_up.wait()
    assert await view(projector_db) == {"s": 3}
    await catch_up.close()


async def test_messages_outside_the_consumers_filter_are_not_waited_for(
    producer_db: Database, projector_db: Database, bus: Bus, background: Start
) -> None:
    """The ack floor stops at the last message the consumer takes; later messages of the
    stream that it does not take are not waited for."""
    immediate(producer_db, bus)
    runner = await provisioned(projector_db, bus)
    background(runner.run())
    await set_counter(producer_db, "f", 1)
    catch_up = watching(bus, timeout=10)
    await catch_up.wait()
    for _ in range(3):
        await bus.js.publish("demo.not.consumed.v1", b"{}")
    consumer = await bus.js.consumer_info("DEMO", CONSUMER)
    assert consumer.ack_floor.stream_seq < await stream_end(bus)
    catch_up.timeout = 0.5
    await catch_up.wait()  # nothing the consumer takes is left: no wait
    await set_counter(producer_db, "f", 2)  # then one it takes, after those it does not
    catch_up.timeout = 10
    await catch_up.wait()
    assert await view(projector_db) == {"f": 2}
    await catch_up.close()


async def test_a_token_names_a_position_and_other_streams_are_ignored(
    producer_db: Database, projector_db: Database, bus: Bus, background: Start
) -> None:
    immediate(producer_db, bus)
    runner = await provisioned(projector_db, bus)
    with recording_writes() as written:
        await set_counter(producer_db, "t", 1)
    catch_up = watching(bus, timeout=0.3)
    await catch_up.wait({"OTHER": 10**6})  # a stream this service does not consume
    with pytest.raises(CatchUpFailed):
        await catch_up.wait(written.positions)
    background(runner.run())
    catch_up.timeout = 10
    await catch_up.wait(written.positions)
    assert await view(projector_db) == {"t": 1}
    # A position past the stream's end (a token from before a reset) counts as its end.
    await catch_up.wait({"DEMO": 10**9})
    await catch_up.close()


async def test_waiters_are_bounded_and_an_unreachable_bus_fails_fast(
    projector_db: Database, bus: Bus, nats_url: str
) -> None:
    await provisioned(projector_db, bus)
    catch_up = watching(bus, timeout=5, max_waiters=0)
    with pytest.raises(CatchUpFailed, match="too many"):
        await catch_up.wait()
    closed = await Bus.connect(nats_url, "closed")
    await closed.close()
    cut_off = CatchUp([StreamWatch(closed.js, "DEMO", CONSUMER)], timeout=5)
    started = time.monotonic()
    with pytest.raises(CatchUpFailed, match="cannot be read from the event bus"):
        await cut_off.wait()
    assert time.monotonic() - started < 4


async def test_one_poll_answers_many_waiters(
    producer_db: Database, projector_db: Database, bus: Bus, background: Start
) -> None:
    immediate(producer_db, bus)
    runner = await provisioned(projector_db, bus)
    background(runner.run())
    await set_counter(producer_db, "m", 1)
    calls = 0
    original = bus.js.consumer_info

    async def counted(*args: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(*args, **kw)

    bus.js.consumer_info = counted  # type: ignore[method-assign]
    catch_up = watching(bus, timeout=10)
    await asyncio.gather(*(catch_up.wait() for _ in range(200)))
    assert calls < 50  # shared polls, not one per waiter
    await catch_up.close()


async def test_a_consumer_applies_only_after_the_streams_it_follows(
    producer_db: Database, projector_db: Database, bus: Bus, background: Start
) -> None:
    """``Subscription.after``: here a second durable consumer of the same stream follows the
    projector's, so it applies an event only once the projector has applied it."""
    immediate(producer_db, bus)
    leader = consumer(projector_db, bus)
    await leader.provision()
    seen: list[dict[str, int]] = []

    async def follow(uow: Any, env: Any) -> None:
        seen.append(await view(projector_db))

    follower = ConsumerRunner(
        consumer="follower",
        db=projector_db,
        js=bus.js,
        subscription=Subscription("DEMO", {CounterSet.event_type: follow}, after=("DEMO",)),
        catch_up=watching(bus, timeout=10),
    )
    await follower.provision()
    await set_counter(producer_db, "f", 3)
    background(follower.run())
    await asyncio.sleep(0)  # let the follower fetch and start waiting for the leader
    background(leader.run())

    async def followed() -> bool:
        return bool(seen)

    await wait_for(followed, timeout=10, message="the follower applies the event")
    assert seen == [{"f": 3}]  # the leader had applied it first


def test_after_refuses_unknown_streams_and_cycles() -> None:
    handlers: dict[Any, Any] = {CounterSet: on_counter_set}
    with pytest.raises(ValueError, match="not consumed"):
        Subscription.of(handlers, after={"DEMO": ("CATALOG",)})
    with pytest.raises(ValueError, match="not consumed"):
        Subscription.of(handlers, after={"DEMO": ("DEMO",)})
    (sub,) = Subscription.of(handlers)
    assert sub.after == ()


def test_tokens_merge_per_stream_and_refuse_garbage() -> None:
    assert parse_tokens(["CATALOG:4,COMMERCE:9", "CATALOG:7", " "]) == {
        "CATALOG": 7,
        "COMMERCE": 9,
    }
    assert format_token({"COMMERCE": 9, "CATALOG": 7}) == "CATALOG:7,COMMERCE:9"
    for bad in ("CATALOG", "catalog:1", "CATALOG:-1", "CATALOG:1e3", "A:99999999999999999999"):
        with pytest.raises(InvalidToken):
            parse_tokens([bad])


# --- the HTTP face --------------------------------------------------------------------------------


class Body(msgspec.Struct):
    counter: str


def middleware_app(db: Database, slot: CatchUpSlot, runs: list[str]) -> Litestar:
    @post("/lookup", status_code=200)
    async def lookup(data: JSONBody[Body]) -> dict[str, int]:
        runs.append(data.counter)
        found = (await view(db)).get(data.counter)
        if found is None:
            raise NotFound("no such counter", code="COUNTER_NOT_FOUND")
        return {"value": found}

    @get("/counters")
    async def listing(request: Request[Any, Any, Any]) -> list[str]:
        runs.append("list")
        names = sorted(await view(db))
        if not names:
            mark_negative(request.scope)
        return names

    @get("/mine", opt={CONSISTENT_READ: True})
    async def mine() -> list[str]:
        return sorted(await view(db))

    @post("/write", status_code=201)
    async def write() -> None:
        await set_counter(db, "w", 1)

    return Litestar(
        route_handlers=[lookup, listing, mine, write],
        middleware=[DefineMiddleware(ConsistencyMiddleware, slot=slot)],
        exception_handlers=exception_handlers(),
    )


async def test_a_negative_answer_waits_for_the_projection_and_is_asked_again(
    producer_db: Database, projector_db: Database, bus: Bus, background: Start
) -> None:
    immediate(producer_db, bus)
    runner = await provisioned(projector_db, bus)
    slot = CatchUpSlot(watching(bus, timeout=0.5))
    runs: list[str] = []
    app = middleware_app(projector_db, slot, runs)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        # Genuinely absent, nothing pending: 404 after one more look.
        absent = await client.post("/lookup", json={"counter": "nope"})
        assert (absent.status_code, absent.json()["code"]) == (404, "COUNTER_NOT_FOUND")
        assert runs == ["nope", "nope"]
        # Written, not yet applied (no consumer runs): never a wrong 404, a retryable 503.
        await set_counter(producer_db, "x", 7)
        lagging = await client.post("/lookup", json={"counter": "x"})
        assert lagging.status_code == 503
        assert lagging.headers["retry-after"] == "1"
        assert lagging.json()["code"] == "CATCHING_UP"
        empty = await client.get("/counters")
        assert empty.status_code == 503  # an empty list is a negative answer too
        # The consumer runs: the same request is answered from the caught-up projection.
        background(runner.run())
        slot.catch_up.timeout = 10  # type: ignore[union-attr]
        runs.clear()
        found = await client.post("/lookup", json={"counter": "x"})
        assert (found.status_code, found.json()) == (200, {"value": 7})
        assert runs in (["x"], ["x", "x"])  # the body was replayed to the second run
        assert (await client.get("/counters")).json() == ["x"]


async def test_tokens_on_writes_and_reads_that_honour_them(
    producer_db: Database, projector_db: Database, bus: Bus, background: Start
) -> None:
    immediate(producer_db, bus)
    runner = await provisioned(projector_db, bus)
    slot = CatchUpSlot(watching(bus, timeout=0.5))
    writer = middleware_app(producer_db, CatchUpSlot(), [])
    reader = middleware_app(projector_db, slot, [])
    transport = httpx.ASGITransport
    async with (
        httpx.AsyncClient(transport=transport(app=writer), base_url="http://w") as w,
        httpx.AsyncClient(transport=transport(app=reader), base_url="http://r") as r,
    ):
        wrote = await w.post("/write")
        token = wrote.headers["consistency-token"]
        assert token == f"DEMO:{await stream_end(bus)}"
        assert "consistency-token" not in (await w.get("/counters")).headers  # nothing written
        # The projection lags (no consumer yet): a read naming the token is not answered stale.
        stale = await r.get("/mine", headers={"consistency-token": token})
        assert stale.status_code == 503
        bad = await r.get("/counters", headers={"consistency-token": "DEMO:x"})
        assert (bad.status_code, bad.json()["code"]) == (400, "INVALID_CONSISTENCY_TOKEN")
        background(runner.run())
        slot.catch_up.timeout = 10  # type: ignore[union-attr]
        fresh = await r.get("/counters", headers={"consistency-token": token})
        assert fresh.json() == ["w"]
        assert (await r.get("/mine")).json() == ["w"]
