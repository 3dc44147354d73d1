"""A buyer's refund request against real PostgreSQL through the app and the sandbox provider:
inside the plan's refund window the refund is asked of the provider at once and its
``payment.refunded`` webhook ends the access; outside it, or without one, nothing changes."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from commerce_support import BUYER, TRAINER, Harness
from stripe_support import FakeStripe, post_stripe, session_of, stripe_event
from test_webhooks import post_webhook, press_pay

from coursemesh.commerce.adapters.tables import entitlements, payment_transactions


async def set_window(h: Harness, org: uuid.UUID, course: uuid.UUID, days: int | None) -> Any:
    r = await h.client.patch(
        f"/organizations/{org}/courses/{course}/price",
        json={"priceInCents": 4900, "refundWindowDays": days},
        headers=h.auth(TRAINER),
    )
    assert r.status_code == 200, r.text
    return r.json()


async def bought(
    h: Harness, window: int | None = 14
) -> tuple[uuid.UUID, uuid.UUID, dict[str, Any]]:
    """A course sold with ``window`` days to ask for a refund, bought and paid by the buyer."""
    org, course = await h.shop(price=4900)
    await set_window(h, org, course, window)
    assert (await h.checkout(course)).status_code == 201
    [txn] = await h.rows(payment_transactions)
    await press_pay(h, txn)
    assert (await post_webhook(h, org, txn)).status_code == 200
    [ent] = await h.rows(entitlements)
    assert ent["status"] == "active"
    return org, course, txn


async def ask(h: Harness, course: uuid.UUID, user: str = BUYER, **body: Any) -> Any:
    return await h.client.post(
        f"/me/courses/{course}/refund-request", json=body or None, headers=h.auth(user)
    )


async def refund_webhooks(h: Harness) -> list[dict[str, Any]]:
    return [
        json.loads(d["body"])
        for d in await h.payment_deliveries()
        if '"type":"payment.refunded"' in d["body"]
    ]


async def test_a_refund_inside_the_window_is_asked_of_the_provider_and_ends_access(
    harness: Harness,
) -> None:
    org, course, txn = await bought(harness)
    r = await ask(harness, course, reason="not for me")
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["paymentId"], body["amountInCents"], body["status"]) == (
        str(txn["id"]),
        4900,
        "requested",
    )
    [refund] = await refund_webhooks(harness)
    assert refund["data"]["metadata"] == txn["metadata"]
    # asking again answers the first request: no second refund
    again = await ask(harness, course)
    assert again.status_code == 202, again.text
    assert again.json()["requestedAt"] == body["requestedAt"]
    assert len(await refund_webhooks(harness)) == 1
    # the provider confirms: the access ends, as for any refund
    refunded = await post_webhook(harness, org, txn, "payment.refunded")
    assert refunded.status_code == 200, refunded.text
    [ent] = await harness.rows(entitlements)
    assert ent["status"] == "revoked"
    history = await harness.client.get(f"/me/courses/{course}/history", headers=harness.auth(BUYER))
    causes = [e["cause"] for e in history.json()["items"]]
    assert causes == ["paid_checkout", "payment_completed", "payment_refunded"]


async def test_a_closed_window_refuses_and_changes_nothing(harness: Harness) -> None:
    _, course, txn = await bought(harness, window=7)
    async with harness.db.engine.begin() as conn:
        await conn.execute(
            sa.update(payment_transactions)
            .where(payment_transactions.c.id == txn["id"])
            .values(completed_at=payment_transactions.c.completed_at - timedelta(days=8))
        )
    before = await harness.snapshot()
    r = await ask(harness, course)
    assert (r.status_code, r.json()["code"]) == (409, "REFUND_WINDOW_CLOSED")
    assert await harness.snapshot() == before
    assert await refund_webhooks(harness) == []


async def test_the_window_sold_is_the_one_that_counts(harness: Harness) -> None:
    org, course, _ = await bought(harness, window=None)
    # a window the seller opens later does not apply to what was sold without one
    plan = await set_window(harness, org, course, 30)
    assert plan["refundWindowDays"] == 30
    r = await ask(harness, course)
    assert (r.status_code, r.json()["code"]) == (409, "REFUNDS_NOT_OFFERED")


async def test_a_price_change_without_the_field_keeps_the_window(harness: Harness) -> None:
    org, course = await harness.shop(price=4900)
    await set_window(harness, org, course, 10)
    r = await harness.client.patch(
        f"/organizations/{org}/courses/{course}/price",
        json={"priceInCents": 5900},
        headers=harness.auth(TRAINER),
    )
    assert r.json()["refundWindowDays"] == 10
    cleared = await set_window(harness, org, course, None)
    assert cleared["refundWindowDays"] is None


async def test_nothing_to_refund_for_a_free_course_a_pending_payment_or_a_stranger(
    harness: Harness,
) -> None:
    org, course = await harness.shop(price=0)
    assert (await harness.checkout(course)).status_code == 201
    free = await ask(harness, course)
    assert (free.status_code, free.json()["code"]) == (409, "NOTHING_TO_REFUND")
    paid = await harness.catalog.course(org, "Paid course")
    await set_window(harness, org, paid, 14)
    assert (await harness.checkout(paid)).status_code == 201
    pending = await ask(harness, paid)
    assert (pending.status_code, pending.json()["code"]) == (409, "NOTHING_TO_REFUND")
    stranger = await ask(harness, paid, user="user_stranger")
    assert (stranger.status_code, stranger.json()["code"]) == (404, "ENTITLEMENT_NOT_FOUND")
    anonymous = await harness.client.post(f"/me/courses/{paid}/refund-request")
    assert anonymous.status_code == 401
    bad = await harness.client.post(
        f"/me/courses/{paid}/refund-request",
        json={"reason": "x", "extra": 1},
        headers=harness.auth(BUYER),
    )
    assert bad.status_code == 400
    assert await refund_webhooks(harness) == []


async def test_stripe_is_asked_for_a_customer_refund_once(
    stripe_harness: Harness, fake_stripe_api: FakeStripe
) -> None:
    h = stripe_harness
    org, course = await h.shop(price=4900)
    await set_window(h, org, course, 14)
    assert (await h.checkout(course)).status_code == 201
    [txn] = await h.rows(payment_transactions)
    account = txn["provider_account_id"]
    paid = stripe_event("checkout.session.completed", session_of(txn, "pi_777"), account)
    assert (await post_stripe(h, paid)).json() == {"status": "applied"}
    assert (await ask(h, course)).status_code == 202
    assert (await ask(h, course)).status_code == 202
    [call] = [c for c in fake_stripe_api.calls if c["path"] == "/v1/refunds"]
    assert call["body"]["payment_intent"] == ["pi_777"]
    assert call["body"]["reason"] == ["requested_by_customer"]
    assert "refund_application_fee" not in call["body"]  # the platform keeps its fee
    assert call["stripe_account"] == account
    assert call["idempotency_key"] == f"coursemesh-customer-refund-{txn['id']}"
