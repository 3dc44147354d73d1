"""Every learning route against hostile bodies: never a 5xx, and a refusal changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursemesh.chassis import hostile
from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity

from .conftest import BUYER, COURSE, ORG, WORKOUT_B, World


@pytest.fixture
async def routes(client: Any, world: World) -> list[hostile.Target]:
    """Every route aimed at a course the buyer holds (the client runs no background work)."""
    await world.course()
    await world.entitle()
    ids = {"org_id": str(ORG), "course_id": str(COURSE), "workout_id": str(WORKOUT_B)}
    return hostile.targets(client.app, ids)


async def test_every_route_refuses_each_hostile_body_and_changes_nothing(
    client: Any, routes: list[hostile.Target], db: Database, identity: TestIdentity
) -> None:
    assert len(routes) == 14
    await hostile.assert_refuses_hostile_bodies(client, db, routes, identity.headers(BUYER))


@hostile.PROPERTY_SETTINGS
@given(data=st.data())
async def test_no_body_breaks_a_route(
    data: st.DataObject,
    client: Any,
    routes: list[hostile.Target],
    db: Database,
    identity: TestIdentity,
) -> None:
    await hostile.assert_draw_survives(data, client, db, routes, identity.headers(BUYER))
