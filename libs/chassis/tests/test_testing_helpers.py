"""The shared test helpers every service's tests rely on."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from coursemesh.chassis.auth import JwtVerifier
from coursemesh.chassis.db import Database
from coursemesh.chassis.demo.service import (
    PRODUCER,
    PROJECTOR,
    projector_subscriptions,
    set_counter,
)
from coursemesh.chassis.demo.tables import counter_view
from coursemesh.chassis.testing import TestIdentity, deliver, migrated_database, outbox_events
from coursemesh.contracts.demo import CounterSet


async def test_migrated_databases_are_independent_clones(postgres_url: str) -> None:
    first = await migrated_database(postgres_url, PRODUCER, PROJECTOR)
    second = await migrated_database(postgres_url, PRODUCER, PROJECTOR)
    assert first != second
    a, b = Database(first, PRODUCER.schema), Database(second, PRODUCER.schema)
    try:
        await set_counter(a, "x", 1)
        assert [e.payload for e in await outbox_events(a)] == [CounterSet(counter_id="x", value=1)]
        assert await outbox_events(b) == []
    finally:
        await a.dispose()
        await b.dispose()


async def test_deliver_applies_an_event_once_through_the_inbox(postgres_url: str) -> None:
    url = await migrated_database(postgres_url, PRODUCER, PROJECTOR)
    producer, projector = Database(url, PRODUCER.schema), Database(url, PROJECTOR.schema)
    try:
        await set_counter(producer, "x", 42)
        (env,) = await outbox_events(producer)
        for _ in range(2):
            await deliver(projector, projector_subscriptions(), env)
        async with projector.engine.connect() as conn:
            rows = (await conn.execute(sa.select(counter_view))).all()
        assert [(r.id, r.value, r.version) for r in rows] == [("x", 42, 1)]
    finally:
        await producer.dispose()
        await projector.dispose()


async def test_identity_tokens_verify_against_its_public_key(tmp_path: Path) -> None:
    identity = TestIdentity(tmp_path)
    verifier = JwtVerifier.from_settings(
        jwks_url=None,
        public_key_file=str(identity.public_key_file),
        issuer=identity.issuer,
        audience=None,
    )
    principal = await verifier.verify(identity.token("u1", email="u1@example.com"))
    assert (principal.sub, principal.email) == ("u1", "u1@example.com")
