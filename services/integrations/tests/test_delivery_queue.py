"""The delivery queue and the registration checks against real PostgreSQL: the claim walks
endpoints (one endpoint's backlog never hides another's delivery) and never starts a second
delivery of an endpoint while one is in flight, even for another sender process; purging
keeps what is still owed; staff are checked before any DNS lookup is made for them; the
migrations build exactly the declared tables."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from integrations_support import ORG, OTHER_OWNER, OWNER, World, settings_for
from litestar.testing import AsyncTestClient

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity, migration_drift
from coursemesh.integrations.adapters.store_sql import SqlDeliveryQueue, SqlEndpointStorage
from coursemesh.integrations.adapters.tables import deliveries, endpoints, metadata
from coursemesh.integrations.app.ports import Endpoint, NewDelivery
from coursemesh.integrations.domain.secrets import new_secret
from coursemesh.integrations.domain.ssrf import IPAddress
from coursemesh.integrations.main import create_app
from coursemesh.integrations.service import SERVICE

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
LEASE = 60.0


async def add_endpoint(
    db: Database, *, enabled: bool = True, updated_at: datetime = NOW
) -> Endpoint:
    endpoint = Endpoint(
        id=uuid.uuid4(),
        organization_id=ORG,
        url="https://hooks.example.com/in",
        description=None,
        event_types=["enrollment.activated"],
        enabled=enabled,
        disabled_reason=None if enabled else "by staff",
        secret=new_secret(),
        previous_secret=None,
        previous_secret_expires_at=None,
        created_at=updated_at,
        updated_at=updated_at,
    )
    async with SqlEndpointStorage(db).transaction() as tx:
        await tx.add_endpoint(endpoint)
    return endpoint


async def add_deliveries(
    db: Database, endpoint: Endpoint, count: int, *, due: datetime, created_at: datetime = NOW
) -> list[uuid.UUID]:
    new = [
        NewDelivery(
            id=uuid.uuid4(),
            endpoint_id=endpoint.id,
            organization_id=endpoint.organization_id,
            webhook_id=f"msg_{uuid.uuid4().hex}",
            event_id=uuid.uuid4(),
            event_type="enrollment.activated",
            body="{}",
            created_at=created_at,
        )
        for _ in range(count)
    ]
    async with SqlEndpointStorage(db).transaction() as tx:
        await tx.add_deliveries(new)
    ids = [d.id for d in new]
    async with db.engine.begin() as conn:
        await conn.execute(
            deliveries.update().where(deliveries.c.id.in_(ids)).values(next_attempt_at=due)
        )
    return ids


async def test_a_long_backlog_of_one_endpoint_never_hides_another_endpoints_delivery(
    db: Database,
) -> None:
    busy, quiet = await add_endpoint(db), await add_endpoint(db)
    # far more due rows than a claim looks at, all older than the other endpoint's one
    await add_deliveries(db, busy, 200, due=NOW - timedelta(hours=1))
    (waiting,) = await add_deliveries(db, quiet, 1, due=NOW)
    claimed = await SqlDeliveryQueue(db).claim_due(NOW, 2, LEASE, [])
    assert sorted(c.endpoint.id for c in claimed) == sorted([busy.id, quiet.id])
    assert waiting in {c.id for c in claimed}


async def test_an_endpoint_has_one_delivery_in_flight_across_senders(db: Database) -> None:
    endpoint = await add_endpoint(db)
    (first,) = await add_deliveries(db, endpoint, 1, due=NOW - timedelta(seconds=2))
    await add_deliveries(db, endpoint, 1, due=NOW - timedelta(seconds=1))
    one, other = SqlDeliveryQueue(db), SqlDeliveryQueue(db)  # as two sender processes
    (taken,) = await one.claim_due(NOW, 16, LEASE, [])
    assert taken.id == first
    assert await other.claim_due(NOW, 16, LEASE, []) == []
    # a sender that died holds the endpoint only until its lease runs out
    (again,) = await other.claim_due(NOW + timedelta(seconds=LEASE + 1), 16, LEASE, [])
    assert again.id == taken.id


async def test_no_claim_for_a_disabled_endpoint_or_a_delivery_not_yet_due(db: Database) -> None:
    disabled = await add_endpoint(db, enabled=False)
    later = await add_endpoint(db)
    await add_deliveries(db, disabled, 1, due=NOW)
    await add_deliveries(db, later, 1, due=NOW + timedelta(minutes=5))
    assert await SqlDeliveryQueue(db).claim_due(NOW, 16, LEASE, []) == []


async def test_purge_keeps_what_is_still_owed(db: Database) -> None:
    old = NOW - timedelta(days=40)
    cutoff = NOW - timedelta(days=30)
    live = await add_endpoint(db)
    long_disabled = await add_endpoint(db, enabled=False, updated_at=old)
    lately_disabled = await add_endpoint(db, enabled=False, updated_at=NOW)
    owed = await add_deliveries(db, live, 1, due=old, created_at=old)
    settled = await add_deliveries(db, live, 1, due=old, created_at=old)
    recent = await add_deliveries(db, live, 1, due=NOW, created_at=NOW)
    abandoned = await add_deliveries(db, long_disabled, 1, due=old, created_at=old)
    paused = await add_deliveries(db, lately_disabled, 1, due=old, created_at=old)
    async with db.engine.begin() as conn:
        await conn.execute(
            deliveries.update().where(deliveries.c.id.in_(settled)).values(status="delivered")
        )
    assert await SqlDeliveryQueue(db).purge(cutoff) == 2
    async with db.engine.connect() as conn:
        left = set((await conn.execute(sa.select(deliveries.c.id))).scalars())
    assert left == {*owed, *recent, *paused}
    assert not left & {*settled, *abandoned}


class RecordingResolver:
    """DNS answering one address for every name, remembering what it was asked."""

    def __init__(self, answer: str) -> None:
        self.answer = ipaddress.ip_address(answer)
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        return [self.answer]


@pytest.fixture
async def dns_client(
    database_url: str, nats_url: str, tmp_path: Path, world: World
) -> AsyncIterator[tuple[AsyncTestClient[Any], RecordingResolver, TestIdentity]]:
    identity = TestIdentity(tmp_path / "identity")
    resolver = RecordingResolver("2002:a00:1::1")  # 6to4 around 10.0.0.1
    settings = settings_for(database_url, nats_url, identity, run_workers=False)
    app = create_app(settings, resolver=resolver)
    async with AsyncTestClient(app) as client:
        yield client, resolver, identity


async def test_no_dns_lookup_is_made_for_someone_who_is_not_staff(
    dns_client: tuple[AsyncTestClient[Any], RecordingResolver, TestIdentity], db: Database
) -> None:
    client, resolver, identity = dns_client
    body = {"url": "https://probe.attacker.example/", "eventTypes": ["enrollment.activated"]}
    base = f"/organizations/{ORG}/webhook-endpoints"
    response = await client.post(base, json=body, headers=identity.headers(OTHER_OWNER))
    assert response.status_code == 404
    assert resolver.asked == []
    # staff get the lookup, and an answer wrapping a private address is refused
    response = await client.post(base, json=body, headers=identity.headers(OWNER))
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "ENDPOINT_ADDRESS_FORBIDDEN"
    assert resolver.asked == ["probe.attacker.example"]
    async with db.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(endpoints))).scalar() == 0
    # nor when someone else tries to point an existing endpoint elsewhere
    endpoint = await add_endpoint(db)
    response = await client.patch(
        f"{base}/{endpoint.id}", json={"url": body["url"]}, headers=identity.headers(OTHER_OWNER)
    )
    assert response.status_code == 404
    assert resolver.asked == ["probe.attacker.example"]


async def test_migrations_match_the_table_declarations(database_url: str) -> None:
    assert await migration_drift(database_url, SERVICE.schema, metadata) == []
