"""The purchase flow, entitlement table (checkout rows), idempotency and edge cases."""

from __future__ import annotations

import asyncio
import uuid

from commerce_support import BUYER, TRAINER, Harness

from coursemesh.chassis.testing import outbox_events
from coursemesh.commerce.adapters.tables import (
    entitlement_transitions,
    entitlements,
    leads,
    organization_leads,
    payment_transactions,
)


async def test_purchase_flow_free_member_of_the_seller_gets_active_entitlement(
    harness: Harness,
) -> None:
    org, course = await harness.shop(price=0)
    membership = await harness.catalog.member(org, BUYER, role="member")
    r = await harness.checkout(course)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["paymentPageUrl"] is None
    [ent] = await harness.rows(entitlements)
    assert str(ent["id"]) == body["entitlementId"]
    assert (ent["status"], ent["membership_id"]) == ("active", membership)
    [audit] = await harness.rows(entitlement_transitions)
    assert (audit["from_status"], audit["to_status"], audit["cause"]) == (
        None,
        "active",
        "free_checkout",
    )
    [event] = await outbox_events(harness.db, "commerce.entitlement.changed.v1")
    assert (event.payload.status, event.aggregate_version, event.payload.membership_id) == (
        "active",
        1,
        membership,
    )
    assert await harness.count(leads) == 0  # a member of the seller: no lead


async def test_purchase_flow_non_member_lead_created_once_and_linked_with_null_membership(
    harness: Harness,
) -> None:
    org, course = await harness.shop(price=0)
    second = await harness.catalog.course(org, "Second course")
    await harness.client.patch(
        f"/organizations/{org}/courses/{second}/price",
        json={"priceInCents": 0},
        headers=harness.auth(TRAINER),
    )
    assert (await harness.checkout(course)).status_code == 201
    assert (await harness.checkout(second)).status_code == 201
    [lead] = await harness.rows(leads)
    assert (lead["user_id"], lead["source"], lead["email"]) == (
        BUYER,
        "course_purchase",
        f"{BUYER}@example.com",
    )
    [link] = await harness.rows(organization_leads)
    assert (link["organization_id"], link["membership_id"]) == (org, None)
    assert len(await outbox_events(harness.db, "commerce.lead.created.v1")) == 1
    r = await harness.client.get(f"/organizations/{org}/leads", headers=harness.auth(TRAINER))
    assert r.json()["total"] == 1
    assert r.json()["items"][0]["userId"] == BUYER


async def test_entitlement_table_new_to_pending_paid_checkout_with_payment_transaction(
    harness: Harness,
) -> None:
    org, course = await harness.shop(price=4900)
    r = await harness.checkout(course)
    assert r.status_code == 201
    body = r.json()
    assert body["paymentPageUrl"].startswith(f"{harness.settings.public_base_url}/pay/sbx_")
    [ent] = await harness.rows(entitlements)
    assert ent["status"] == "pending"
    [txn] = await harness.rows(payment_transactions)
    assert txn["metadata"]["courseEntitlementId"] == body["entitlementId"]
    assert (txn["amount_in_cents"], txn["currency"], txn["status"], txn["organization_id"]) == (
        4900,
        "USD",
        "pending",
        org,
    )
    assert body["paymentPageUrl"].endswith(txn["provider_transaction_id"])


async def test_edge_buyer_already_owns_course_409_and_nothing_changes(harness: Harness) -> None:
    _, course = await harness.shop(price=0)
    assert (await harness.checkout(course)).status_code == 201
    before = await harness.rows(entitlements)
    r = await harness.checkout(course)
    assert (r.status_code, r.json()["code"]) == (409, "COURSE_ALREADY_OWNED")
    assert await harness.rows(entitlements) == before
    assert await harness.count(entitlement_transitions) == 1


async def test_purchase_flow_unknown_draft_or_archived_course_is_404(harness: Harness) -> None:
    org, course = await harness.shop(price=0)
    draft = await harness.catalog.course(org, published=False)
    await harness.catalog.archive(org, course)
    for target in (uuid.uuid4(), draft, course):
        r = await harness.checkout(target)
        assert (r.status_code, r.json()["code"]) == (404, "COURSE_NOT_FOUND")
    assert await harness.count(entitlements) == 0


async def test_purchase_flow_no_active_plan_is_400(harness: Harness) -> None:
    org, course = await harness.shop(price=None)
    r = await harness.checkout(course)
    assert (r.status_code, r.json()["code"]) == (400, "NO_ACTIVE_PLAN")
    await harness.client.patch(
        f"/organizations/{org}/courses/{course}/price",
        json={"priceInCents": 100, "isActive": False},
        headers=harness.auth(TRAINER),
    )
    r = await harness.checkout(course)
    assert (r.status_code, r.json()["code"]) == (400, "NO_ACTIVE_PLAN")
    assert await harness.count(entitlements) == 0
    assert await harness.count(leads) == 0


async def test_permissions_checkout_needs_a_valid_token(harness: Harness) -> None:
    _, course = await harness.shop(price=0)
    r = await harness.client.post(f"/courses/{course}/checkout")
    assert (r.status_code, r.json()["code"]) == (401, "MISSING_TOKEN")
    expired = harness.identity.token(BUYER, ttl=-120)
    r = await harness.client.post(
        f"/courses/{course}/checkout", headers={"Authorization": f"Bearer {expired}"}
    )
    assert (r.status_code, r.json()["code"]) == (401, "TOKEN_EXPIRED")
    forged = harness.identity.token(BUYER)[:-4] + "AAAA"
    r = await harness.client.post(
        f"/courses/{course}/checkout", headers={"Authorization": f"Bearer {forged}"}
    )
    assert (r.status_code, r.json()["code"]) == (401, "INVALID_TOKEN")
    assert await harness.count(entitlements) == 0


async def test_idempotency_key_retry_returns_first_response_and_creates_nothing(
    harness: Harness,
) -> None:
    _, course = await harness.shop(price=4900)
    first = await harness.checkout(course, **{"Idempotency-Key": "k-1"})
    again = await harness.checkout(course, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert await harness.count(payment_transactions) == 1
    assert await harness.count(entitlement_transitions) == 1


async def test_idempotency_concurrent_duplicate_checkouts_make_one_entitlement(
    harness: Harness,
) -> None:
    """Unique (user_id, program_id): five simultaneous free checkouts, one owner row."""
    _, course = await harness.shop(price=0)
    results = await asyncio.gather(*(harness.checkout(course) for _ in range(5)))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201, 409, 409, 409, 409]
    assert await harness.count(entitlements) == 1
    assert await harness.count(entitlement_transitions) == 1


async def test_edge_abandoned_checkout_retry_reactivates_same_row_pending(harness: Harness) -> None:
    _, course = await harness.shop(price=4900)
    first = (await harness.checkout(course)).json()
    second = (await harness.checkout(course)).json()
    assert first["entitlementId"] == second["entitlementId"]
    assert first["paymentPageUrl"] != second["paymentPageUrl"]
    [ent] = await harness.rows(entitlements)
    assert (ent["status"], ent["version"]) == ("pending", 2)
    assert await harness.count(payment_transactions) == 2
