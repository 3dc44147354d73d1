"""Projections of catalog's events, the staff price endpoint (trainer-side 'Set price') and
the staff list of a course's entitlements."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from commerce_support import MEMBER, TRAINER, Harness

from coursemesh.chassis.testing import outbox_events
from coursemesh.commerce.adapters.tables import courses, plans
from coursemesh.contracts import envelope
from coursemesh.contracts.catalog import CourseDetailsChanged


async def test_course_projection_applies_newest_version_only(harness: Harness) -> None:
    org = await harness.catalog.organization()
    course = await harness.catalog.course(org)  # v1 details (draft), v2 published
    stale = CourseDetailsChanged(
        course_id=course,
        organization_id=org,
        name="old name",
        description=None,
        image_url=None,
        duration_days=3,
        preview_type="none",
        status="draft",
    )
    from coursemesh.chassis.testing import deliver
    from coursemesh.commerce.events.catalog import SUBSCRIPTIONS

    await deliver(
        harness.db, SUBSCRIPTIONS, envelope(stale, aggregate_id=course, aggregate_version=1)
    )
    [row] = await harness.rows(courses, courses.c.id == course)
    assert (row["status"], row["name"]) == ("published", "30-day reset")
    await harness.catalog.archive(org, course)
    [row] = await harness.rows(courses, courses.c.id == course)
    assert row["status"] == "archived"


async def test_trainer_set_price_upserts_one_plan_with_org_currency_and_publishes(
    harness: Harness,
) -> None:
    org = await harness.catalog.organization(currency="EUR")
    await harness.catalog.member(org, TRAINER)
    course = await harness.catalog.course(org, published=False)
    url = f"/organizations/{org}/courses/{course}/price"
    first = await harness.client.patch(
        url, json={"priceInCents": 4900}, headers=harness.auth(TRAINER)
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["priceInCents"], body["currency"], body["isActive"]) == (4900, "EUR", True)
    second = await harness.client.patch(
        url, json={"priceInCents": 0, "isActive": False}, headers=harness.auth(TRAINER)
    )
    assert second.json()["planId"] == body["planId"]
    [plan] = await harness.rows(plans)
    assert (plan["price_in_cents"], plan["is_active"], plan["type"], plan["version"]) == (
        0,
        False,
        "course",
        2,
    )
    events = await outbox_events(harness.db, "commerce.plan.priced.v1")
    assert [(e.aggregate_version, e.payload.price_in_cents) for e in events] == [(1, 4900), (2, 0)]


async def test_price_bad_input_negative_or_fractional_is_400_and_changes_nothing(
    harness: Harness,
) -> None:
    org = await harness.catalog.organization()
    await harness.catalog.member(org, TRAINER)
    course = await harness.catalog.course(org)
    url = f"/organizations/{org}/courses/{course}/price"
    for bad in (-1, 12.5, None):
        r = await harness.client.patch(
            url, json={"priceInCents": bad}, headers=harness.auth(TRAINER)
        )
        assert r.status_code == 400, bad
        assert r.json()["code"] == "VALIDATION_FAILED"
        assert r.json()["errors"][0]["path"] == "$.priceInCents"
    r = await harness.client.patch(
        url, json={"priceInCents": 1, "surprise": 1}, headers=harness.auth(TRAINER)
    )
    assert r.status_code == 400
    assert await harness.count(plans) == 0
    assert await outbox_events(harness.db, "commerce.plan.priced.v1") == []


async def test_permissions_price_requires_staff_of_that_org(harness: Harness) -> None:
    """Members, other orgs' staff and strangers get 404 (ids cannot be probed); no token 401."""
    org = await harness.catalog.organization()
    other = await harness.catalog.organization("Other Gym")
    await harness.catalog.member(org, MEMBER, role="member")
    await harness.catalog.member(other, TRAINER)
    course = await harness.catalog.course(org)
    url = f"/organizations/{org}/courses/{course}/price"
    for user in (MEMBER, TRAINER, "user_stranger"):
        r = await harness.client.patch(url, json={"priceInCents": 100}, headers=harness.auth(user))
        assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    r = await harness.client.patch(url, json={"priceInCents": 100})
    assert (r.status_code, r.json()["code"]) == (401, "MISSING_TOKEN")
    # staff of the other org cannot price this org's course through their own org either
    r = await harness.client.patch(
        f"/organizations/{other}/courses/{course}/price",
        json={"priceInCents": 100},
        headers=harness.auth(TRAINER),
    )
    assert (r.status_code, r.json()["code"]) == (404, "COURSE_NOT_FOUND")
    assert await harness.count(plans) == 0


async def test_price_unknown_course_is_404(harness: Harness) -> None:
    org = await harness.catalog.organization()
    await harness.catalog.member(org, TRAINER)
    r = await harness.client.patch(
        f"/organizations/{org}/courses/{uuid.uuid4()}/price",
        json={"priceInCents": 100},
        headers=harness.auth(TRAINER),
    )
    assert (r.status_code, r.json()["code"]) == (404, "COURSE_NOT_FOUND")


async def test_membership_removal_revokes_staff_rights(harness: Harness) -> None:
    org = await harness.catalog.organization()
    membership = await harness.catalog.member(org, TRAINER)
    course = await harness.catalog.course(org)
    from coursemesh.contracts.catalog import MembershipChanged, membership_aggregate_id

    await harness.catalog.send(
        MembershipChanged(
            organization_id=org,
            user_id=TRAINER,
            membership_id=membership,
            role=None,
            is_staff=False,
        ),
        membership_aggregate_id(org, TRAINER),
    )
    r = await harness.client.patch(
        f"/organizations/{org}/courses/{course}/price",
        json={"priceInCents": 100},
        headers=harness.auth(TRAINER),
    )
    assert r.status_code == 404
    async with harness.db.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(plans))).scalar_one() == 0


async def test_course_entitlements_of_unknown_or_foreign_course_is_404_known_empty_is_200(
    harness: Harness,
) -> None:
    org, course = await harness.shop(price=None)
    other_org = await harness.catalog.organization("Other Gym")
    foreign = await harness.catalog.course(other_org)
    for unknown in (uuid.uuid4(), foreign):
        r = await harness.client.get(
            f"/organizations/{org}/courses/{unknown}/entitlements", headers=harness.auth(TRAINER)
        )
        assert (r.status_code, r.json()["code"]) == (404, "COURSE_NOT_FOUND"), unknown
    draft = await harness.catalog.course(org, "Draft", published=False)
    for known in (course, draft):
        r = await harness.client.get(
            f"/organizations/{org}/courses/{known}/entitlements", headers=harness.auth(TRAINER)
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
