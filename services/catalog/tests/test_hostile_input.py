"""Every catalog route against hostile bodies: never a 5xx, and a refusal changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from coursemesh.catalog.main import create_app
from coursemesh.catalog.service import SERVICE
from coursemesh.catalog.testing import OWNER, Api
from coursemesh.chassis import hostile
from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity, service_settings


@pytest.fixture
async def attack(
    database_url: str, nats_url: str, identity: TestIdentity
) -> AsyncIterator[tuple[Any, list[hostile.Target]]]:
    """The app with no background work (a refusal must change nothing by itself), a published
    course, and every route aimed at it."""
    settings = service_settings(
        SERVICE,
        database_url=database_url,
        nats_url=nats_url,
        identity=identity,
        run_workers=False,
        catch_up=False,
    )
    async with AsyncTestClient(create_app(settings)) as client:
        api = Api(client, identity)
        org, course, workout = await api.published_course()
        await api.add_member(org, "user_member", "trainer")
        ids = {"org_id": org, "course_id": course, "workout_id": workout, "user_id": "user_member"}
        yield client, hostile.targets(client.app, ids)


async def test_every_route_refuses_each_hostile_body_and_changes_nothing(
    attack: tuple[Any, list[hostile.Target]], db: Database, identity: TestIdentity
) -> None:
    client, routes = attack
    assert len(routes) == 13
    await hostile.assert_refuses_hostile_bodies(client, db, routes, identity.headers(OWNER))


@hostile.PROPERTY_SETTINGS
@given(data=st.data())
async def test_no_body_breaks_a_route(
    data: st.DataObject,
    attack: tuple[Any, list[hostile.Target]],
    db: Database,
    identity: TestIdentity,
) -> None:
    client, routes = attack
    await hostile.assert_draw_survives(data, client, db, routes, identity.headers(OWNER))
