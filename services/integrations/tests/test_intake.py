"""Runs of consumed events becoming deliveries, on real PostgreSQL through the real consumer
(its inbox, its grouping of a batched handler's run, its driver transaction): the messages are
handed over as a pull fetch would, without a broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from integrations_support import ORG, OTHER_ORG, entitlement

from coursemesh.chassis.consumer import ConsumerRunner
from coursemesh.chassis.db import Database, asyncpg_dsn
from coursemesh.chassis.testing import wait_for
from coursemesh.contracts import Envelope, Event, commerce, customgen, encode, envelope
from coursemesh.integrations.adapters.store_sql import CHANNEL, SqlEndpointStorage
from coursemesh.integrations.adapters.tables import deliveries
from coursemesh.integrations.app.ports import Endpoint
from coursemesh.integrations.events.handlers import subscriptions

AT = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@dataclass
class Fetched:
    """A message as a pull fetch hands it over: first delivery, no headers."""

    env: Envelope[Any]
    acked: bool = False

    @property
    def data(self) -> bytes:
        return encode(self.env)

    @property
    def subject(self) -> str:
        return self.env.type

    headers = None
    metadata = SimpleNamespace(num_delivered=1)

    async def ack(self) -> None:
        self.acked = True


def runner_for(db: Database, payload: Event) -> ConsumerRunner:
    (sub,) = [s for s in subscriptions() if type(payload).event_type in s.handlers]
    return ConsumerRunner(consumer="integrations", db=db, js=None, subscription=sub)  # type: ignore[arg-type]


async def consume(db: Database, envs: list[Envelope[Any]]) -> None:
    """One fetched batch of ``envs`` (all of one stream)."""
    msgs = [Fetched(env) for env in envs]
    await runner_for(db, envs[0].payload).handle_batch(msgs)  # type: ignore[arg-type]
    assert all(m.acked for m in msgs)


def event(payload: Event) -> Envelope[Any]:
    return envelope(payload, aggregate_id=uuid.uuid4(), aggregate_version=1)


async def add_endpoint(
    db: Database, org: uuid.UUID, event_types: list[str], *, enabled: bool = True
) -> uuid.UUID:
    endpoint = Endpoint(
        id=uuid.uuid4(),
        organization_id=org,
        url="https://example.com/hooks",
        description=None,
        event_types=event_types,
        enabled=enabled,
        disabled_reason=None if enabled else "off",
        secret="whsec_x",
        previous_secret=None,
        previous_secret_expires_at=None,
        created_at=AT,
        updated_at=AT,
    )
    async with SqlEndpointStorage(db).transaction() as tx:
        await tx.add_endpoint(endpoint)
    return endpoint.id


async def delivered(db: Database) -> list[Any]:
    query = sa.select(deliveries).order_by(deliveries.c.created_at, deliveries.c.event_type)
    async with db.engine.connect() as conn:
        return list((await conn.execute(query)).all())


def payment(org: uuid.UUID) -> commerce.PaymentCompleted:
    return commerce.PaymentCompleted(
        transaction_id=uuid.uuid4(),
        entitlement_id=None,
        custom_course_purchase_id=None,
        organization_id=org,
        user_id="user_buyer",
        amount_in_cents=1000,
        currency="EUR",
        provider="sandbox",
        provider_transaction_id="tx_1",
        completed_at=AT,
    )


def lead(org: uuid.UUID) -> commerce.LeadCreated:
    return commerce.LeadCreated(
        lead_id=uuid.uuid4(),
        organization_id=org,
        user_id="user_buyer",
        email=None,
        source="course_purchase",
        created_at=AT,
    )


@pytest.fixture
async def notifications(database_url: str) -> AsyncIterator[list[str]]:
    """What the senders' LISTEN connection would be woken by."""
    received: list[str] = []
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    await conn.add_listener(CHANNEL, lambda *args: received.append(args[-1]))
    yield received
    await conn.close()


async def test_a_run_of_mixed_events_makes_one_delivery_per_subscribed_endpoint(
    db: Database, notifications: list[str]
) -> None:
    both = await add_endpoint(db, ORG, ["enrollment.activated", "payment.completed"])
    activations = await add_endpoint(db, ORG, ["enrollment.activated"])
    await add_endpoint(db, ORG, ["enrollment.activated", "payment.completed"], enabled=False)
    theirs = await add_endpoint(db, OTHER_ORG, ["lead.created", "payment.completed"])
    run = [
        activated := event(entitlement()),
        event(entitlement("pending")),  # no public counterpart
        paid := event(payment(ORG)),
        event(lead(ORG)),  # nobody of ORG listens to leads
        their_lead := event(lead(OTHER_ORG)),
        again := event(entitlement("revoked", "active")),  # enrollment.revoked: not listened to
        event(entitlement()),
    ]

    await consume(db, run)

    rows = await delivered(db)
    got = sorted((r.event_id, r.endpoint_id, r.event_type, r.organization_id) for r in rows)
    last = run[-1].id
    assert got == sorted(
        [
            (activated.id, both, "enrollment.activated", ORG),
            (activated.id, activations, "enrollment.activated", ORG),
            (paid.id, both, "payment.completed", ORG),
            (their_lead.id, theirs, "lead.created", OTHER_ORG),
            (last, both, "enrollment.activated", ORG),
            (last, activations, "enrollment.activated", ORG),
        ]
    )
    assert again.id not in {r.event_id for r in rows}
    for r in rows:
        assert (r.status, r.attempts, r.webhook_id) == ("pending", 0, f"msg_{r.id.hex}")
        assert r.next_attempt_at == r.created_at == r.updated_at
    await wait_for(lambda: _some(notifications), message="the senders woken")

    await consume(db, run)  # redelivered: the inbox absorbs the whole run
    assert len(await delivered(db)) == len(rows)


async def test_a_run_without_subscriber_writes_nothing_and_wakes_no_sender(
    db: Database, notifications: list[str]
) -> None:
    await add_endpoint(db, ORG, ["lead.created"], enabled=False)
    await add_endpoint(db, OTHER_ORG, ["enrollment.activated"])
    await consume(db, [event(entitlement()), event(payment(ORG)), event(lead(ORG))])
    await asyncio.sleep(0.3)  # a notification would have arrived by now
    assert (await delivered(db), notifications) == ([], [])


async def test_custom_course_events_reach_the_organization_that_requested_the_course(
    db: Database,
) -> None:
    endpoint = await add_endpoint(db, OTHER_ORG, ["custom_course.ready", "custom_course.updated"])
    await add_endpoint(db, ORG, ["custom_course.ready"])
    course_id = uuid.uuid4()
    requested = customgen.CustomCourseRequested(
        custom_course_id=course_id,
        user_id="user_buyer",
        organization_id=OTHER_ORG,
        purchase_id=uuid.uuid4(),
        course_code="XAB12C",
    )
    ready = customgen.CustomCourseReady(
        custom_course_id=course_id, user_id="user_buyer", checksum="0" * 32, file_size_bytes=10
    )
    unknown = customgen.CustomCourseReady(
        custom_course_id=uuid.uuid4(), user_id="user_buyer", checksum="0" * 32, file_size_bytes=1
    )
    # The request (a per-event handler, on a session) and the run after it, in one batch.
    await consume(db, [event(requested), ready_env := event(ready), event(unknown)])

    rows = await delivered(db)
    assert [(r.event_id, r.endpoint_id, r.event_type) for r in rows] == [
        (ready_env.id, endpoint, "custom_course.ready")
    ]


async def _some(notifications: list[str]) -> bool:
    return bool(notifications)
