"""Staff grants against real PostgreSQL through the app: comp access without a payment,
audited (who, why) and announced in ``commerce.entitlement.changed.v2`` only (v1 has no such
cause); a revoked entitlement can be granted again, an owned or pending one cannot."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from commerce_support import BUYER, TRAINER, Harness

from coursemesh.chassis.testing import outbox_events
from coursemesh.commerce.adapters.tables import (
    entitlement_transitions,
    entitlements,
    payment_transactions,
)

GUEST = "user_guest"


async def grant(
    h: Harness, org: uuid.UUID, course: uuid.UUID, user: str = GUEST, by: str = TRAINER, **body: Any
) -> Any:
    return await h.client.post(
        f"/organizations/{org}/courses/{course}/grants",
        json={"userId": user, "reason": "podcast giveaway", **body},
        headers=h.auth(by),
    )


async def test_a_grant_opens_the_course_without_a_payment_and_is_audited(
    harness: Harness,
) -> None:
    org, course = await harness.shop(price=4900)
    r = await grant(harness, org, course)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["userId"], body["status"], body["sourcePaymentTransactionId"]) == (
        GUEST,
        "active",
        None,
    )
    assert await harness.rows(payment_transactions) == []
    [audit] = await harness.rows(entitlement_transitions)
    assert (audit["cause"], audit["actor"], audit["reason"]) == (
        "staff_granted",
        f"user:{TRAINER}",
        "podcast giveaway",
    )
    assert await outbox_events(harness.db, "commerce.entitlement.changed.v1") == []
    [event] = await outbox_events(harness.db, "commerce.entitlement.changed.v2")
    assert (event.payload.cause, event.payload.status, event.aggregate_version) == (
        "staff_granted",
        "active",
        1,
    )
    staff_view = await harness.client.get(
        f"/organizations/{org}/entitlements/{body['entitlementId']}/history",
        headers=harness.auth(TRAINER),
    )
    [step] = staff_view.json()["items"]
    assert (step["actorType"], step["actor"]) == ("staff", f"user:{TRAINER}")
    own_view = await harness.client.get(
        f"/me/courses/{course}/history", headers=harness.auth(GUEST)
    )
    [own] = own_view.json()["items"]
    assert (own["actorType"], own["actor"], own["reason"]) == ("staff", None, "podcast giveaway")


async def test_a_revoked_grant_can_be_granted_again_an_active_one_cannot(
    harness: Harness,
) -> None:
    org, course = await harness.shop(price=4900)
    granted = (await grant(harness, org, course)).json()
    again = await grant(harness, org, course)
    assert (again.status_code, again.json()["code"]) == (409, "COURSE_ALREADY_OWNED")
    revoked = await harness.client.post(
        f"/organizations/{org}/entitlements/{granted['entitlementId']}/revoke",
        json={"reason": "giveaway ended"},
        headers=harness.auth(TRAINER),
    )
    assert revoked.json()["status"] == "revoked"
    back = await grant(harness, org, course, reason="winner after all")
    assert back.status_code == 201, back.text
    assert (back.json()["entitlementId"], back.json()["version"]) == (granted["entitlementId"], 3)
    causes = [r["cause"] for r in await harness.rows(entitlement_transitions)]
    assert sorted(causes) == ["staff_granted", "staff_granted", "staff_revoked"]


async def test_a_pending_checkout_is_not_granted_over(harness: Harness) -> None:
    org, course = await harness.shop(price=4900)
    assert (await harness.checkout(course)).status_code == 201
    before = await harness.snapshot()
    r = await grant(harness, org, course, user=BUYER)
    assert (r.status_code, r.json()["code"]) == (409, "ILLEGAL_ENTITLEMENT_TRANSITION")
    assert await harness.snapshot() == before


async def test_only_staff_grant_and_only_their_organizations_courses(harness: Harness) -> None:
    org, course = await harness.shop(price=4900)
    other_org = await harness.catalog.organization("Other studio")
    foreign = await harness.catalog.course(other_org)
    before = await harness.snapshot()
    outsider = await grant(harness, org, course, by=BUYER)
    assert (outsider.status_code, outsider.json()["code"]) == (404, "NOT_FOUND")
    elsewhere = await grant(harness, org, foreign)
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, "COURSE_NOT_FOUND")
    assert await harness.snapshot() == before


@pytest.mark.parametrize(
    "body",
    [
        {"userId": GUEST},
        {"reason": "no user"},
        {"userId": "", "reason": "empty user"},
        {"userId": GUEST, "reason": ""},
        {"userId": GUEST, "reason": "x", "email": "guest@example.com"},
    ],
)
async def test_a_grant_without_a_user_or_a_reason_is_400(
    harness: Harness, body: dict[str, Any]
) -> None:
    org, course = await harness.shop(price=4900)
    r = await harness.client.post(
        f"/organizations/{org}/courses/{course}/grants", json=body, headers=harness.auth(TRAINER)
    )
    assert r.status_code == 400, r.text
    assert await harness.rows(entitlements) == []


async def test_a_user_named_by_e_mail_is_found_in_the_identity_directory(harness: Harness) -> None:
    org, course = await harness.shop(price=4900)
    address = f"{GUEST}@{harness.settings.dev_email_domain}"
    r = await harness.client.post(
        f"/organizations/{org}/courses/{course}/grants",
        json={"email": address, "reason": "by address"},
        headers=harness.auth(TRAINER),
    )
    assert r.status_code == 201, r.text
    assert r.json()["userId"] == GUEST
    before = await harness.snapshot()
    unknown = await harness.client.post(
        f"/organizations/{org}/courses/{course}/grants",
        json={"email": "nobody@elsewhere.example", "reason": "by address"},
        headers=harness.auth(TRAINER),
    )
    assert (unknown.status_code, unknown.json()["code"]) == (422, "USER_NOT_FOUND")
    assert await harness.snapshot() == before
