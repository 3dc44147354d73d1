"""Every integrations route against hostile bodies: never a 5xx, and a refusal changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from integrations_support import ORG, OWNER, Receiver

from coursemesh.chassis import hostile
from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity


@pytest.fixture
async def routes(
    idle_client: Any, identity: TestIdentity, receiver: Receiver
) -> list[hostile.Target]:
    """Every route with a body, aimed at a registered endpoint of the organization (the
    sender does not run: a delivery it sent would change the database under the check)."""
    created = await idle_client.post(
        f"/organizations/{ORG}/webhook-endpoints",
        json={"url": receiver.url, "eventTypes": ["lead.created"]},
        headers=identity.headers(OWNER),
    )
    assert created.status_code == 201, created.text
    ids = {"org_id": str(ORG), "endpoint_id": created.json()["id"]}
    return hostile.targets(idle_client.app, ids)


async def test_every_route_refuses_each_hostile_body_and_changes_nothing(
    idle_client: Any, routes: list[hostile.Target], db: Database, identity: TestIdentity
) -> None:
    assert len(routes) == 7
    await hostile.assert_refuses_hostile_bodies(idle_client, db, routes, identity.headers(OWNER))


@hostile.PROPERTY_SETTINGS
@given(data=st.data())
async def test_no_body_breaks_a_route(
    data: st.DataObject,
    idle_client: Any,
    routes: list[hostile.Target],
    db: Database,
    identity: TestIdentity,
) -> None:
    await hostile.assert_draw_survives(data, idle_client, db, routes, identity.headers(OWNER))
