"""A tiny producer/projector pair that exercises the event spine in tests and benchmarks.

The producer owns counters and publishes ``demo.counter.set.v1`` through its outbox; the projector
keeps a version-checked view of them. Real services follow exactly the same shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from coursemesh.chassis.consumer import AnyHandler, Subscription
from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.chassis.demo.tables import (
    counter_effects,
    counter_view,
    counters,
    producer_metadata,
    projector_metadata,
)
from coursemesh.chassis.projection import upsert_if_newer, upsert_many_if_newer
from coursemesh.chassis.service import ServiceDefinition
from coursemesh.chassis.settings import ServiceSettings
from coursemesh.chassis.transaction import Transaction
from coursemesh.contracts import Envelope
from coursemesh.contracts.demo import CounterSet

PRODUCER = ServiceDefinition(
    name="demo-producer",
    package="coursemesh.chassis.demo",
    schema="demo_producer",
    source="demo",
    env_prefix="DEMO_PRODUCER_",
    settings_type=ServiceSettings,
    metadata=producer_metadata,
    migrations_package="coursemesh.chassis.demo.producer_migrations",
)
PROJECTOR = ServiceDefinition(
    name="demo-projector",
    package="coursemesh.chassis.demo",
    schema="demo_projector",
    source="demoprojector",
    env_prefix="DEMO_PROJECTOR_",
    settings_type=ServiceSettings,
    metadata=projector_metadata,
    migrations_package="coursemesh.chassis.demo.projector_migrations",
)


async def set_counter(db: Database, counter_id: str, value: int) -> int:
    """Set a counter and publish its new state; returns the new version."""
    async with db.unit_of_work() as uow:
        stmt = (
            pg_insert(counters)
            .values(id=counter_id, value=value, version=1)
            .on_conflict_do_update(
                index_elements=[counters.c.id],
                set_={"value": value, "version": counters.c.version + 1},
            )
            .returning(counters.c.version)
        )
        version = int((await uow.session.execute(stmt)).scalar_one())
        uow.publish(
            CounterSet(counter_id=counter_id, value=value),
            aggregate_id=counter_id,
            aggregate_version=version,
        )
    return version


async def on_counter_set(uow: UnitOfWork, env: Envelope[Any]) -> None:
    payload: CounterSet = env.payload
    applied = await upsert_if_newer(
        uow.session,
        counter_view,
        {"id": payload.counter_id, "value": payload.value, "version": env.aggregate_version},
        key=["id"],
    )
    await uow.session.execute(
        sa.insert(counter_effects).values(
            event_id=env.id,
            counter_id=payload.counter_id,
            version=env.aggregate_version,
            applied=applied,
        )
    )


_EFFECTS_INSERT = f"""
INSERT INTO "{PROJECTOR.schema}".counter_effects (event_id, counter_id, version, applied)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bool[])
"""


async def on_counter_sets(uow: Transaction, envs: Sequence[Envelope[Any]]) -> None:
    """:func:`on_counter_set` for a run of events, in two statements whatever their number.

    Of several events for one counter in the run, the newest is the one applied (the others
    were superseded before they could be seen); an event is ``applied`` when it is that newest
    one and newer than the view's row."""
    rows = [
        {"id": env.payload.counter_id, "value": env.payload.value, "version": env.aggregate_version}
        for env in envs
    ]
    written = await upsert_many_if_newer(uow, counter_view, rows, key=["id"])
    newest: dict[str, int] = {}
    for row in rows:
        if (row["id"],) in written:
            newest[row["id"]] = max(row["version"], newest.get(row["id"], row["version"]))
    applied = [newest.get(row["id"]) == row["version"] for row in rows]
    driver = await uow.driver()
    await driver.execute(
        _EFFECTS_INSERT,
        [env.id for env in envs],
        [row["id"] for row in rows],
        [row["version"] for row in rows],
        applied,
    )


def projector_subscriptions(handler: AnyHandler = on_counter_set) -> list[Subscription]:
    return Subscription.of({CounterSet: handler})
