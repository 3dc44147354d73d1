"""Every commerce route against hostile bodies: never a 5xx, and a refusal changes nothing."""

from __future__ import annotations

import uuid

import pytest
from commerce_support import TRAINER, Harness
from hypothesis import given
from hypothesis import strategies as st

from coursemesh.chassis import hostile


@pytest.fixture
async def routes(harness: Harness) -> list[hostile.Target]:
    """Every route aimed at a priced course of an organization whose trainer calls (the app
    runs no background work, so a refusal must change nothing by itself)."""
    org, course = await harness.shop()
    ids = {
        "org_id": str(org),
        "course_id": str(course),
        "code": "SPRING",
        "session_id": "cs_1",
        "bundle_id": str(uuid.uuid4()),
    }
    return hostile.targets(harness.client.app, ids)


async def test_every_route_refuses_each_hostile_body_and_changes_nothing(
    harness: Harness, routes: list[hostile.Target]
) -> None:
    assert len(routes) == 21
    tails = {(t.method, t.path.rsplit("/", 1)[1]) for t in routes}
    assert {
        ("POST", "onboarding"),
        ("PUT", "return-url-allowlist"),
        ("POST", "checkout"),
        ("POST", "coupons"),
        ("POST", "refund-request"),
        ("POST", "grants"),
        ("POST", "bulk"),
        ("POST", "jobs"),
    } <= tails
    await hostile.assert_refuses_hostile_bodies(
        harness.client, harness.db, routes, harness.auth(TRAINER)
    )


@hostile.PROPERTY_SETTINGS
@given(data=st.data())
async def test_no_body_breaks_a_route(
    data: st.DataObject, harness: Harness, routes: list[hostile.Target]
) -> None:
    await hostile.assert_draw_survives(
        data, harness.client, harness.db, routes, harness.auth(TRAINER)
    )
