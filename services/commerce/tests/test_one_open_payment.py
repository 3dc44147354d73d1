"""One open payment per entitlement, on the real stack: a second checkout of a pending course
expires the first session (sandbox and Stripe) and supersedes its payment; a late payment of
the superseded session is refunded at the provider, recorded and audited, never applied; a
provider that fails while expiring makes the checkout a 502 that changes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from commerce_support import BUYER, Harness
from stripe_support import FakeStripe, session_of, stripe_webhook
from test_webhooks import post_webhook, press_pay

from coursemesh.chassis.testing import outbox_events, wait_for
from coursemesh.commerce.adapters.sandbox import organization_webhook_secret, sign
from coursemesh.commerce.adapters.tables import (
    entitlement_transitions,
    entitlements,
    payment_transactions,
    payment_transitions,
    receipts,
    sandbox_sessions,
)

COMPLETED = "commerce.payment.completed.v1"
REFUNDED = "commerce.payment.refunded.v1"
LIVE_BUYER = "user_buyer_paying_twice"


async def payments_by_age(h: Harness) -> list[dict[str, Any]]:
    return sorted(await h.rows(payment_transactions), key=lambda p: p["created_at"])


async def two_checkouts(h: Harness) -> tuple[uuid.UUID, dict[str, Any], dict[str, Any]]:
    """A paid course checked out twice by the buyer: the org, the first (superseded) payment,
    the second (open) one."""
    org, course = await h.shop(price=4900)
    first = await h.checkout(course)
    second = await h.checkout(course)
    assert first.status_code == second.status_code == 201, second.text
    assert first.json()["entitlementId"] == second.json()["entitlementId"]
    old, new = await payments_by_age(h)
    assert first.json()["paymentPageUrl"].endswith(old["provider_transaction_id"])
    assert second.json()["paymentPageUrl"].endswith(new["provider_transaction_id"])
    return org, old, new


# --- sandbox ----------------------------------------------------------------------------------


async def test_a_second_checkout_expires_the_first_sandbox_session_and_pays_once(
    harness: Harness,
) -> None:
    org, old, new = await two_checkouts(harness)
    assert (old["status"], old["status_reason"], old["superseded_by"], old["version"]) == (
        "superseded",
        "superseded",
        new["id"],
        2,
    )
    assert new["status"] == "pending"
    [audit] = await harness.rows(payment_transitions)
    assert (audit["transaction_id"], audit["from_status"], audit["to_status"], audit["actor"]) == (
        old["id"],
        "pending",
        "superseded",
        BUYER,
    )
    [session] = await harness.rows(
        sandbox_sessions, sandbox_sessions.c.id == old["provider_transaction_id"]
    )
    assert session["status"] == "expired"
    page = await harness.client.get(f"/pay/{old['provider_transaction_id']}")
    assert page.status_code == 200
    assert "This payment is expired." in page.text
    assert "/pay/" + old["provider_transaction_id"] + "/pay" not in page.text  # no Pay form
    refused = await harness.client.post(f"/pay/{old['provider_transaction_id']}/pay")
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "PAYMENT_SESSION_EXPIRED"
    assert len(await harness.payment_deliveries()) == 0  # nothing to tell: no payment webhook

    await press_pay(harness, new)
    r = await post_webhook(harness, org, new)
    assert (r.status_code, r.json()) == (200, {"status": "applied"})
    [ent] = await harness.rows(entitlements)
    assert (ent["status"], ent["source_payment_transaction_id"]) == ("active", new["id"])
    audit = sorted(await harness.rows(entitlement_transitions), key=lambda a: a["id"])
    assert [(a["from_status"], a["to_status"]) for a in audit] == [
        (None, "pending"),
        ("pending", "pending"),
        ("pending", "active"),
    ]
    assert await harness.count(receipts) == 1
    assert len(await outbox_events(harness.db, COMPLETED)) == 1


async def test_a_late_payment_of_the_expired_sandbox_session_is_refunded_not_applied(
    harness: Harness,
) -> None:
    org, old, new = await two_checkouts(harness)
    await press_pay(harness, new)
    assert (await post_webhook(harness, org, new)).status_code == 200
    [active] = await harness.rows(entitlements)
    # A validly signed completion of the expired session that the sandbox never settled: the
    # payment guard refuses it (no money was received, so none is refunded) and nothing changes.
    before = await harness.snapshot()
    forged = await post_webhook(harness, org, old)
    assert (forged.status_code, forged.json()["code"]) == (409, "WEBHOOK_SESSION_NOT_SETTLED")
    assert await harness.snapshot() == before

    # The buyer's money did reach the provider for the old session (its Pay won the race with
    # the expiry at the provider): the late completion is refunded, not applied.
    async with harness.db.engine.begin() as conn:
        await conn.execute(
            sa.update(sandbox_sessions)
            .where(sandbox_sessions.c.id == old["provider_transaction_id"])
            .values(status="paid")
        )
    r = await post_webhook(harness, org, old, event_id="evt_late")
    assert (r.status_code, r.json()) == (200, {"status": "applied"})
    [late] = await harness.rows(payment_transactions, payment_transactions.c.id == old["id"])
    assert (late["status"], late["status_reason"]) == ("refunded", "late_payment_superseded")
    assert late["refunded_at"] is not None
    audit = await harness.rows(
        payment_transitions, payment_transitions.c.transaction_id == old["id"]
    )
    assert [(a["from_status"], a["to_status"], a["cause"]) for a in audit] == [
        ("pending", "superseded", "superseded"),
        ("superseded", "refunded", "late_payment_superseded"),
    ]
    [session] = await harness.rows(
        sandbox_sessions, sandbox_sessions.c.id == old["provider_transaction_id"]
    )
    assert session["status"] == "refunded"
    deliveries = await harness.payment_deliveries()  # the new session's Pay, the refund
    [delivery] = [d for d in deliveries if json.loads(d["body"])["type"] == "payment.refunded"]
    assert json.loads(delivery["body"])["data"]["sessionId"] == old["provider_transaction_id"]
    assert await harness.rows(entitlements) == [active]
    assert await harness.count(receipts) == 1
    assert len(await outbox_events(harness.db, COMPLETED)) == 1
    [refunded] = await outbox_events(harness.db, REFUNDED)
    assert (refunded.payload.transaction_id, refunded.payload.entitlement_id) == (
        old["id"],
        active["id"],
    )

    # The replay changes nothing.
    before = await harness.snapshot()
    again = await post_webhook(harness, org, old, event_id="evt_late")
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    assert await harness.snapshot() == before

    # The sandbox's refund webhook, delivered as its sender would: the entitlement stays
    # active (the refund is of a payment that did not activate it).
    assert harness.settings.sandbox_webhook_key is not None
    secret = organization_webhook_secret(harness.settings.sandbox_webhook_key, org)
    headers = sign(secret, delivery["id"], delivery["body"], datetime.now(UTC))
    r = await harness.client.post(
        f"/webhooks/payments/{org}",
        content=delivery["body"],
        headers={**headers, "content-type": "application/json"},
    )
    assert (r.status_code, r.json()) == (200, {"status": "applied"})
    assert await harness.rows(entitlements) == [active]
    assert len(await outbox_events(harness.db, REFUNDED)) == 1


async def test_live_second_checkout_pays_once_and_the_late_payment_is_refunded_by_webhook(
    live: Callable[..., Awaitable[Harness]], smtp_server: Any
) -> None:
    """Over real HTTP with the workers: the first page refuses Pay, the second page's Pay
    activates the course through the sender's signed webhook, one receipt is mailed; a late
    payment of the first session is refunded and the sandbox's refund webhook is delivered
    (the sender woken by the refund's commit) without revoking anything."""
    h = await live()
    org, course = await h.shop(price=4900)
    # A buyer of its own: the SMTP server is shared by the session's tests.
    first = (await h.checkout(course, LIVE_BUYER)).json()
    second = (await h.checkout(course, LIVE_BUYER)).json()
    refused = await h.client.post(first["paymentPageUrl"] + "/pay")
    assert (refused.status_code, refused.json()["code"]) == (409, "PAYMENT_SESSION_EXPIRED")
    assert (await h.client.post(second["paymentPageUrl"] + "/pay")).status_code == 303

    # The webhook sender delivers on its own schedule: wait for its effect.
    async def active() -> bool:
        return (await h.rows(entitlements))[0]["status"] == "active"

    await wait_for(active, timeout=20, message="entitlement activated by the signed webhook")
    email = f"{LIVE_BUYER}@example.com"

    async def mailed() -> bool:  # the receipt sender works apart from the webhook
        return any(m["To"] == email for m in smtp_server.mailbox.messages())

    await wait_for(mailed, timeout=20, message="receipt in the SMTP server")
    old, _ = await payments_by_age(h)
    async with h.db.engine.begin() as conn:  # the buyer's late payment reached the provider
        await conn.execute(
            sa.update(sandbox_sessions)
            .where(sandbox_sessions.c.id == old["provider_transaction_id"])
            .values(status="paid")
        )
    late = await post_webhook(h, org, old)
    assert (late.status_code, late.json()) == (200, {"status": "applied"})

    async def refund_delivered() -> bool:  # the sender, woken by the refund's commit
        for d in await h.payment_deliveries():
            if json.loads(d["body"])["type"] == "payment.refunded":
                return d["last_status"] is not None
        return False

    await wait_for(refund_delivered, timeout=20, message="the refund webhook delivered")
    [refund] = [
        d
        for d in await h.payment_deliveries()
        if json.loads(d["body"])["type"] == "payment.refunded"
    ]
    assert refund["last_status"] == 200
    [ent] = await h.rows(entitlements)
    assert ent["status"] == "active"
    assert await h.count(receipts) == 1
    assert len([m for m in smtp_server.mailbox.messages() if m["To"] == email]) == 1


# --- Stripe -----------------------------------------------------------------------------------


async def test_stripe_second_checkout_expires_the_first_session_and_refunds_its_late_payment(
    stripe_harness: Harness, fake_stripe_api: FakeStripe
) -> None:
    h = stripe_harness
    _, old, new = await two_checkouts(h)
    account = new["provider_account_id"]
    assert fake_stripe_api.paths()[-3:] == [
        "/v1/checkout/sessions",
        f"/v1/checkout/sessions/{old['provider_transaction_id']}/expire",
        "/v1/checkout/sessions",
    ]
    assert old["status"] == "superseded"
    paid = await stripe_webhook(h, "checkout.session.completed", session_of(new, "pi_new"), account)
    assert paid.json() == {"status": "applied"}
    [active] = await h.rows(entitlements)
    assert (active["status"], active["source_payment_transaction_id"]) == ("active", new["id"])
    # Stripe's own expiry event for the superseded session leaves everything as it is.
    expired = await stripe_webhook(
        h, "checkout.session.expired", session_of(old, "", payment_status="unpaid"), account
    )
    assert expired.status_code == 200
    assert await h.rows(entitlements) == [active]

    late = await stripe_webhook(
        h, "checkout.session.completed", session_of(old, "pi_late"), account
    )
    assert (late.status_code, late.json()) == (200, {"status": "applied"})
    [refund] = [c for c in fake_stripe_api.calls if c["path"] == "/v1/refunds"]
    assert refund["body"]["payment_intent"] == ["pi_late"]
    assert refund["body"]["reason"] == ["duplicate"]
    assert refund["idempotency_key"] == f"coursemesh-late-refund-{old['id']}"
    assert refund["stripe_account"] == account  # refunded on the seller's account
    assert refund["body"]["refund_application_fee"] == ["true"]
    [row] = await h.rows(payment_transactions, payment_transactions.c.id == old["id"])
    assert (row["status"], row["status_reason"], row["provider_payment_id"]) == (
        "refunded",
        "late_payment_superseded",
        "pi_late",
    )
    assert await h.rows(entitlements) == [active]
    assert await h.count(receipts) == 1
    # Stripe's charge.refunded for the late payment: the entitlement is not revoked.
    charge = {"id": "ch_late", "object": "charge", "payment_intent": "pi_late", "metadata": {}}
    assert (await stripe_webhook(h, "charge.refunded", charge, account)).status_code == 200
    assert await h.rows(entitlements) == [active]
    [event] = await outbox_events(h.db, REFUNDED)
    assert event.payload.transaction_id == old["id"]


async def test_stripe_failing_to_expire_makes_the_checkout_502_and_changes_nothing(
    stripe_harness: Harness, fake_stripe_api: FakeStripe
) -> None:
    h = stripe_harness
    _, course = await h.shop(price=4900)
    assert (await h.checkout(course)).status_code == 201
    [txn] = await h.rows(payment_transactions)
    fake_stripe_api.expire = "error"
    before = await h.snapshot()
    r = await h.checkout(course)
    assert r.status_code == 502
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "PAYMENT_PROVIDER_UNAVAILABLE"
    assert await h.snapshot() == before
    expire = f"/v1/checkout/sessions/{txn['provider_transaction_id']}/expire"
    assert expire in fake_stripe_api.paths()
    assert fake_stripe_api.paths().count("/v1/checkout/sessions") == 1  # no second session


async def test_stripe_session_paid_meanwhile_refuses_the_new_checkout(
    stripe_harness: Harness, fake_stripe_api: FakeStripe
) -> None:
    h = stripe_harness
    _, course = await h.shop(price=4900)
    assert (await h.checkout(course)).status_code == 201
    [txn] = await h.rows(payment_transactions)
    fake_stripe_api.expire = "not_open"
    fake_stripe_api.session_status = "complete"
    before = await h.snapshot()
    r = await h.checkout(course)
    assert (r.status_code, r.json()["code"]) == (409, "PREVIOUS_PAYMENT_COMPLETED")
    assert await h.snapshot() == before
    assert f"/v1/checkout/sessions/{txn['provider_transaction_id']}" in fake_stripe_api.paths("GET")
    assert fake_stripe_api.paths().count("/v1/checkout/sessions") == 1
    # A session Stripe already expired by itself: the new checkout goes ahead.
    fake_stripe_api.session_status = "expired"
    r = await h.checkout(course)
    assert r.status_code == 201, r.text
    assert fake_stripe_api.paths().count("/v1/checkout/sessions") == 2
