"""How a unit of work writes its outbox rows: in its transaction, with the relay's NOTIFY; and
how a single driver statement writes them itself (StagedEvents)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import sqlalchemy as sa

from coursemesh.chassis.db import Database, asyncpg_dsn, statement_outbox
from coursemesh.chassis.demo.service import PRODUCER
from coursemesh.chassis.demo.tables import counter_view, counters
from coursemesh.chassis.testing import outbox_events
from coursemesh.contracts.demo import CounterSet


async def _listening(db: Database) -> tuple[asyncpg.Connection, asyncio.Queue[str]]:
    heard: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(asyncpg_dsn(db.url))
    await conn.add_listener(db.channel, lambda *args: heard.put_nowait(args[1]))
    return conn, heard


async def test_rows_after_a_state_change_share_its_transaction_and_notify_at_commit(
    producer_db: Database,
) -> None:
    listener, heard = await _listening(producer_db)
    try:
        async with producer_db.unit_of_work() as uow:
            await uow.session.execute(sa.insert(counter_view).values(id="x", value=1, version=1))
            for n in (1, 2, 3):
                uow.publish(
                    CounterSet(counter_id="x", value=n), aggregate_id="x", aggregate_version=n
                )
            await uow.flush_outbox()
            assert heard.empty()  # NOTIFY is delivered at commit, not before
            assert await outbox_events(producer_db) == []  # nor are the rows visible outside
        await asyncio.wait_for(heard.get(), timeout=10)
        events = await outbox_events(producer_db)
        assert [(e.aggregate_id, e.aggregate_version) for e in events] == [
            ("x", 1),
            ("x", 2),
            ("x", 3),
        ]
        assert [e.payload.value for e in events] == [1, 2, 3]
    finally:
        await listener.close()


async def test_a_unit_of_work_that_only_publishes_writes_its_rows_atomically(
    producer_db: Database,
) -> None:
    class Boom(Exception):
        pass

    try:
        async with producer_db.unit_of_work() as uow:
            uow.publish(CounterSet(counter_id="y", value=1), aggregate_id="y", aggregate_version=1)
            await uow.flush_outbox()
            raise Boom
    except Boom:
        pass
    assert await outbox_events(producer_db) == []  # rolled back with the transaction

    listener, heard = await _listening(producer_db)
    try:
        async with producer_db.unit_of_work() as uow:
            uow.publish(CounterSet(counter_id="y", value=2), aggregate_id="y", aggregate_version=2)
        await asyncio.wait_for(heard.get(), timeout=10)
        assert [e.payload.value for e in await outbox_events(producer_db)] == [2]
    finally:
        await listener.close()


async def test_one_statement_writes_its_state_and_outbox_rows_together_or_not_at_all(
    producer_db: Database,
) -> None:
    # A row and the events about it in one statement, outside any transaction.
    outbox = statement_outbox(PRODUCER.schema, first_param=3)
    save = f"""
        WITH counter AS (
            INSERT INTO counters (id, value, version) VALUES ($1, $2, 1) RETURNING 1
        ), {outbox.cte}
        SELECT (SELECT count(*) FROM counter), {outbox.tail}
    """
    woken: list[str] = []
    producer_db.on_outbox_commit(lambda: woken.append("relay"))
    listener, heard = await _listening(producer_db)
    try:
        async with producer_db.single_statement() as write:
            staged = [
                write.publish(
                    CounterSet(counter_id="s", value=n), aggregate_id="s", aggregate_version=n
                )
                for n in (1, 2)
            ]
            row = await write.execute(save, "s", 2)
            assert row is not None
            assert tuple(row)[:2] == (1, 2)
            assert woken == []  # published (the relays woken) only once the statement is done
        await asyncio.wait_for(heard.get(), timeout=10)  # NOTIFY went with the statement
        assert woken == ["relay"]  # and this process's relay was told at once

        # The same row again: the unique violation undoes the statement, events included,
        # and nothing is published.
        async def write_late() -> None:
            async with producer_db.single_statement() as late:
                late.publish(
                    CounterSet(counter_id="s", value=3), aggregate_id="s", aggregate_version=3
                )
                await late.execute(save, "s", 3)

        with pytest.raises(asyncpg.UniqueViolationError):
            await write_late()
        assert woken == ["relay"]
        assert await _pool_is_idle(producer_db)
        async with producer_db.engine.connect() as conn:
            rows = (await conn.execute(sa.select(counters.c.id, counters.c.value))).all()
        assert [tuple(r) for r in rows] == [("s", 2)]
        written = await outbox_events(producer_db)
        assert [(e.id, e.aggregate_version, e.payload.value) for e in written] == [
            (env.id, env.aggregate_version, env.payload.value) for env in staged
        ]
        assert heard.empty()
    finally:
        await listener.close()


async def _pool_is_idle(db: Database) -> bool:
    """The connection handed back last is out of any transaction (the pool holds one here)."""
    async with db.reading() as conn:
        return not conn.is_in_transaction() and await conn.fetchval("SELECT 1") == 1


async def test_a_driver_unit_of_work_commits_rows_outbox_and_notify_together(
    producer_db: Database,
) -> None:
    listener, heard = await _listening(producer_db)
    committed: list[str] = []
    try:
        async with producer_db.driver_unit_of_work() as uow:
            driver = await uow.driver()
            await driver.execute(
                "INSERT INTO demo_producer.counters (id, value, version) VALUES ($1, 1, 1)", "d"
            )
            uow.publish(CounterSet(counter_id="d", value=1), aggregate_id="d", aggregate_version=1)
            uow.after_commit(lambda: committed.append("after"))
            assert not hasattr(uow, "session")  # a sibling of the session's, not a subclass
            assert committed == []
        await asyncio.wait_for(heard.get(), timeout=10)
    finally:
        await listener.close()
    assert committed == ["after"]
    assert [e.payload for e in await outbox_events(producer_db)] == [
        CounterSet(counter_id="d", value=1)
    ]
    async with producer_db.engine.connect() as conn:
        assert await conn.scalar(sa.select(counters.c.value).where(counters.c.id == "d")) == 1
    assert await _pool_is_idle(producer_db)


async def test_a_failing_driver_unit_of_work_leaves_nothing_and_an_idle_connection(
    producer_db: Database,
) -> None:
    async def write_then_fail() -> None:
        async with producer_db.driver_unit_of_work() as uow:
            driver = await uow.driver()
            await driver.execute(
                "INSERT INTO demo_producer.counters (id, value, version) VALUES ($1, 1, 1)", "f"
            )
            uow.publish(CounterSet(counter_id="f", value=1), aggregate_id="f", aggregate_version=1)
            await uow.flush_outbox()
            raise RuntimeError("the handler failed after writing")

    with pytest.raises(RuntimeError, match="after writing"):
        await write_then_fail()
    assert await outbox_events(producer_db) == []
    async with producer_db.engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(counters)) == 0
    assert await _pool_is_idle(producer_db)
