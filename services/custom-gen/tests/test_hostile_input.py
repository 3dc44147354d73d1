"""Every custom-gen route against hostile bodies: never a 5xx, and a refusal changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from coursemesh.chassis import hostile
from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity
from coursemesh.customgen.main import create_app

from .conftest import BUYER, ORG, generate_now, make_settings, make_staff


@pytest.fixture
async def attack(
    database_url: str, nats_url: str, identity: TestIdentity, s3: Any, db: Database
) -> AsyncIterator[tuple[Any, list[hostile.Target]]]:
    """The app with no background work (a refusal must change nothing by itself), a ready
    course of a buyer who is also staff of its organization, and every route aimed at it."""
    settings = make_settings(
        database_url, nats_url, identity, s3, run_workers=False, catch_up=False
    )
    course_id = await generate_now(db, settings)
    await make_staff(db, BUYER)
    async with AsyncTestClient(create_app(settings)) as client:
        ids = {"organization_id": str(ORG), "course_id": str(course_id)}
        yield client, hostile.targets(client.app, ids)


async def test_every_route_refuses_each_hostile_body_and_changes_nothing(
    attack: tuple[Any, list[hostile.Target]], db: Database, identity: TestIdentity
) -> None:
    client, routes = attack
    assert len(routes) == 5
    await hostile.assert_refuses_hostile_bodies(client, db, routes, identity.headers(BUYER))


@hostile.PROPERTY_SETTINGS
@given(data=st.data())
async def test_no_body_breaks_a_route(
    data: st.DataObject,
    attack: tuple[Any, list[hostile.Target]],
    db: Database,
    identity: TestIdentity,
) -> None:
    client, routes = attack
    await hostile.assert_draw_survives(data, client, db, routes, identity.headers(BUYER))
