"""The inbox forgets events only once their messages can no longer be delivered."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from coursemesh.chassis.bus import STREAM_MAX_AGE_SECONDS
from coursemesh.chassis.consumer import INBOX_RETENTION, purge_inbox
from coursemesh.chassis.db import Database
from coursemesh.chassis.demo.service import projector_subscriptions
from coursemesh.chassis.demo.tables import counter_effects
from coursemesh.chassis.testing import deliver
from coursemesh.contracts import envelope
from coursemesh.contracts.demo import CounterSet


async def age_inbox(db: Database, by: timedelta) -> None:
    inbox = db.spine.inbox
    async with db.engine.begin() as conn:
        await conn.execute(sa.update(inbox).values(processed_at=inbox.c.processed_at - by))


async def inbox_size(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(db.spine.inbox)) or 0)


def test_inbox_retention_outlives_the_streams_message_age() -> None:
    assert timedelta(seconds=STREAM_MAX_AGE_SECONDS) < INBOX_RETENTION


async def test_purge_removes_only_rows_older_than_the_retention(projector_db: Database) -> None:
    subs = projector_subscriptions()
    old = [
        envelope(CounterSet(counter_id=f"o{i}", value=i), aggregate_id=f"o{i}", aggregate_version=1)
        for i in range(5)
    ]
    for env in old:
        await deliver(projector_db, subs, env)
    await age_inbox(projector_db, INBOX_RETENTION + timedelta(hours=1))
    recent = envelope(CounterSet(counter_id="r", value=1), aggregate_id="r", aggregate_version=1)
    await deliver(projector_db, subs, recent)

    assert await purge_inbox(projector_db, chunk=2) == 5  # in several chunks
    assert await inbox_size(projector_db) == 1
    # The event still remembered stays exactly-once: a redelivery has no second effect.
    await deliver(projector_db, subs, recent)
    async with projector_db.engine.connect() as conn:
        effects = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(counter_effects)
            .where(counter_effects.c.counter_id == "r")
        )
    assert effects == 1
    assert await purge_inbox(projector_db) == 0
