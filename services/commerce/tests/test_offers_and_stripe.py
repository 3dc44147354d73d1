"""Custom course offers (same payment flow, custom-course-purchased event) and the Stripe
adapter against a local HTTP server standing in for Stripe's API."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from commerce_support import BUYER, TRAINER, Catalog, Harness
from litestar.testing import AsyncTestClient
from test_webhooks import post_webhook, press_pay

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity, outbox_events
from coursemesh.commerce.adapters.tables import (
    custom_course_purchases,
    entitlements,
    payment_transactions,
)
from coursemesh.commerce.main import create_app
from coursemesh.commerce.service import SERVICE
from coursemesh.commerce.settings import Settings


async def test_custom_offer_paid_checkout_then_webhook_publishes_purchase(harness: Harness) -> None:
    org = await harness.catalog.organization()
    await harness.catalog.member(org, TRAINER)
    url = f"/organizations/{org}/custom-course-offers"
    bad = await harness.client.post(
        url,
        json={"code": "99ENB", "title": "Calm", "priceInCents": 9900},
        headers=harness.auth(TRAINER),
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "VALIDATION_FAILED")
    stranger = await harness.client.post(
        url,
        json={"code": "X99ENB", "title": "Calm", "priceInCents": 9900},
        headers=harness.auth(BUYER),
    )
    assert stranger.status_code == 404
    r = await harness.client.post(
        url,
        json={"code": "X99ENB", "title": "Calm", "priceInCents": 9900},
        headers=harness.auth(TRAINER),
    )
    assert r.status_code == 201, r.text
    first = await harness.client.post(
        "/custom-course-offers/X99ENB/checkout", headers=harness.auth(BUYER, email="b@example.com")
    )
    second = await harness.client.post(
        "/custom-course-offers/X99ENB/checkout", headers=harness.auth(BUYER, email="b@example.com")
    )
    assert first.json()["purchaseId"] != second.json()["purchaseId"]  # may buy more than once
    assert first.json()["paymentPageUrl"]
    assert await outbox_events(harness.db, "commerce.custom_course.purchased.v1") == []
    [txn] = await harness.rows(
        payment_transactions,
        payment_transactions.c.custom_course_purchase_id == uuid.UUID(first.json()["purchaseId"]),
    )
    await press_pay(harness, txn)
    assert (await post_webhook(harness, org, txn)).status_code == 200
    [event] = await outbox_events(harness.db, "commerce.custom_course.purchased.v1")
    assert (event.payload.course_code, event.payload.user_id, event.payload.transaction_id) == (
        "X99ENB",
        BUYER,
        txn["id"],
    )
    statuses = sorted(p["status"] for p in await harness.rows(custom_course_purchases))
    assert statuses == ["paid", "pending"]
    missing = await harness.client.post(
        "/custom-course-offers/XNOPE1/checkout", headers=harness.auth(BUYER)
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "OFFER_NOT_FOUND")


async def test_custom_offer_free_checkout_publishes_purchase_at_once(harness: Harness) -> None:
    org = await harness.catalog.organization()
    await harness.catalog.member(org, TRAINER)
    await harness.client.post(
        f"/organizations/{org}/custom-course-offers",
        json={"code": "XFREE1", "title": "Gift", "priceInCents": 0},
        headers=harness.auth(TRAINER),
    )
    r = await harness.client.post(
        "/custom-course-offers/XFREE1/checkout", headers=harness.auth(BUYER)
    )
    assert r.json()["paymentPageUrl"] is None
    [event] = await outbox_events(harness.db, "commerce.custom_course.purchased.v1")
    assert event.payload.transaction_id is None


# --- Stripe ---------------------------------------------------------------------------------

WEBHOOK_SECRET = "whsec_test_commerce"


@pytest.fixture
def fake_stripe() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server answering Stripe's Checkout Session create call."""
    calls: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            calls.append(
                {
                    "path": self.path,
                    "body": self.rfile.read(length).decode(),
                    "auth": self.headers["authorization"],
                }
            )
            session_id = f"cs_test_{uuid.uuid4().hex}"
            body = json.dumps(
                {
                    "id": session_id,
                    "object": "checkout.session",
                    "url": f"https://checkout.stripe.test/{session_id}",
                }
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", calls
    server.shutdown()


def stripe_signed(payload: str, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    ts = at or int(time.time())
    mac = hmac.new(secret.encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def stripe_event(kind: str, obj: dict[str, Any]) -> str:
    return json.dumps(
        {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind, "data": {"object": obj}}
    )


async def test_stripe_checkout_session_webhooks_activate_and_refund_revokes(
    make_settings: Callable[..., Settings],
    identity: TestIdentity,
    fake_stripe: tuple[str, list[dict[str, Any]]],
) -> None:
    api_base, calls = fake_stripe
    settings = make_settings(
        run_workers=False,
        catch_up=False,
        payment_provider="stripe",
        stripe_api_key="sk_test_123",
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=api_base,
    )
    db = Database(settings.database_url, SERVICE.schema)
    async with AsyncTestClient(create_app(settings)) as client:
        h = Harness(client, db, Catalog(db, {}), identity, settings)
        org, course = await h.shop(price=4900)
        r = await h.checkout(course)
        assert r.status_code == 201, r.text
        assert r.json()["paymentPageUrl"].startswith("https://checkout.stripe.test/cs_test_")
        assert calls[0]["path"] == "/v1/checkout/sessions"
        assert "[unit_amount]=4900" in calls[0]["body"]
        [txn] = await h.rows(payment_transactions)
        session = {
            "id": txn["provider_transaction_id"],
            "object": "checkout.session",
            "payment_status": "paid",
            "payment_intent": "pi_123",
            "amount_total": 4900,
            "currency": "usd",
            "metadata": txn["metadata"],
        }
        hook = f"/webhooks/payments/{org}"
        payload = stripe_event("checkout.session.completed", session)
        forged = await client.post(
            hook,
            content=payload,
            headers={"stripe-signature": stripe_signed(payload, "whsec_other")},
        )
        assert (forged.status_code, forged.json()["code"]) == (400, "WEBHOOK_SIGNATURE_INVALID")
        stale = await client.post(
            hook,
            content=payload,
            headers={"stripe-signature": stripe_signed(payload, at=int(time.time()) - 600)},
        )
        assert (stale.status_code, stale.json()["code"]) == (400, "WEBHOOK_TIMESTAMP_STALE")
        assert (await h.rows(entitlements))[0]["status"] == "pending"
        ok = await client.post(
            hook, content=payload, headers={"stripe-signature": stripe_signed(payload)}
        )
        assert ok.json() == {"status": "applied"}
        assert (await h.rows(entitlements))[0]["status"] == "active"
        refund = stripe_event(
            "charge.refunded",
            {"id": "ch_1", "object": "charge", "payment_intent": "pi_123", "metadata": {}},
        )
        r = await client.post(
            hook, content=refund, headers={"stripe-signature": stripe_signed(refund)}
        )
        assert r.json() == {"status": "applied"}
        [ent] = await h.rows(entitlements)
        assert ent["status"] == "revoked"
    await db.dispose()


async def test_stripe_completion_must_carry_the_checkout_amount_and_currency(
    make_settings: Callable[..., Settings],
    identity: TestIdentity,
    fake_stripe: tuple[str, list[dict[str, Any]]],
) -> None:
    api_base, _ = fake_stripe
    settings = make_settings(
        run_workers=False,
        catch_up=False,
        payment_provider="stripe",
        stripe_api_key="sk_test_123",
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=api_base,
    )
    db = Database(settings.database_url, SERVICE.schema)
    async with AsyncTestClient(create_app(settings)) as client:
        h = Harness(client, db, Catalog(db, {}), identity, settings)
        org, course = await h.shop(price=4900)
        assert (await h.checkout(course)).status_code == 201
        [txn] = await h.rows(payment_transactions)
        hook = f"/webhooks/payments/{org}"

        def completed(**fields: Any) -> str:
            session = {
                "id": txn["provider_transaction_id"],
                "object": "checkout.session",
                "payment_status": "paid",
                "payment_intent": "pi_456",
                "amount_total": 4900,
                "currency": "usd",
                "metadata": txn["metadata"],
                **fields,
            }
            return stripe_event("checkout.session.completed", session)

        before = await h.snapshot()
        for payload in (
            completed(amount_total=100),
            completed(currency="eur"),
            completed(amount_total=None, currency=None),  # says nothing of what was paid
        ):
            r = await client.post(
                hook, content=payload, headers={"stripe-signature": stripe_signed(payload)}
            )
            assert (r.status_code, r.json()["code"]) == (422, "WEBHOOK_AMOUNT_MISMATCH"), payload
        for malformed in (
            "not json",
            json.dumps({"id": "evt_1", "type": "checkout.session.completed", "data": []}),
            json.dumps(
                {"id": "evt_2", "type": "checkout.session.completed", "data": {"object": []}}
            ),
            completed(amount_total="4900"),
        ):
            r = await client.post(
                hook, content=malformed, headers={"stripe-signature": stripe_signed(malformed)}
            )
            assert (r.status_code, r.json()["code"]) == (400, "WEBHOOK_MALFORMED"), malformed
        assert await h.snapshot() == before
        assert (await h.rows(entitlements))[0]["status"] == "pending"
        payload = completed()
        ok = await client.post(
            hook, content=payload, headers={"stripe-signature": stripe_signed(payload)}
        )
        assert ok.json() == {"status": "applied"}
        assert (await h.rows(entitlements))[0]["status"] == "active"
    await db.dispose()
