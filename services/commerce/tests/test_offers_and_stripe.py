"""Custom course offers (same payment flow, custom-course-purchased event) and the Stripe
adapter with Connect against a local HTTP server speaking Stripe's API, with Stripe-signed
Connect events at the platform's one endpoint."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from commerce_support import BUYER, OWNER, TRAINER, Catalog, Harness
from litestar.testing import AsyncTestClient
from stripe_support import (
    FakeStripe,
    post_stripe,
    session_of,
    stripe_event,
    stripe_settings,
    stripe_signed,
    stripe_webhook,
)
from test_webhooks import post_webhook, press_pay

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity, outbox_events
from coursemesh.commerce.adapters.tables import (
    custom_course_purchases,
    entitlements,
    payment_accounts,
    payment_transactions,
)
from coursemesh.commerce.main import create_app
from coursemesh.commerce.service import SERVICE
from coursemesh.commerce.settings import Settings


async def test_custom_offer_paid_checkout_then_webhook_publishes_purchase(harness: Harness) -> None:
    org = await harness.catalog.organization()
    await harness.catalog.member(org, TRAINER)
    await harness.onboard(org)
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


# --- Stripe Connect ---------------------------------------------------------------------------


async def stripe_paid_checkout(
    h: Harness, price: int = 4900
) -> tuple[uuid.UUID, uuid.UUID, dict[str, Any]]:
    org, course = await h.shop(price=price)
    r = await h.checkout(course)
    assert r.status_code == 201, r.text
    [txn] = await h.rows(payment_transactions)
    return org, course, txn


async def test_stripe_onboarding_opens_one_connected_account_and_links_to_stripe(
    stripe_harness: Harness, fake_stripe_api: FakeStripe
) -> None:
    h = stripe_harness
    org = await h.catalog.organization()
    await h.catalog.member(org, OWNER, role="owner")
    await h.catalog.member(org, TRAINER)
    url = f"/organizations/{org}/payments/onboarding"
    account_url = f"/organizations/{org}/payments/account"
    before = await h.client.get(account_url, headers=h.auth(TRAINER))
    assert (before.status_code, before.json()["status"]) == (200, "not_started")
    first = await h.client.post(url, headers=h.auth(OWNER))
    assert first.status_code == 200, first.text
    assert first.json()["url"].startswith("https://connect.stripe.test/setup/")
    account = first.json()["account"]
    assert (account["provider"], account["status"]) == ("stripe", "onboarding")
    [create] = [c for c in fake_stripe_api.calls if c["path"] == "/v1/accounts"]
    assert create["body"]["type"] == ["standard"]
    assert create["body"]["metadata[organizationId]"] == [str(org)]
    assert create["idempotency_key"] == f"coursemesh-account-{org}"
    [link] = [c for c in fake_stripe_api.calls if c["path"] == "/v1/account_links"]
    assert link["body"]["account"] == [account["accountId"]]
    assert link["body"]["type"] == ["account_onboarding"]
    assert link["body"]["return_url"] == [
        f"{h.settings.public_base_url}/payments/onboarding/return"
    ]
    assert link["body"]["refresh_url"] == [
        f"{h.settings.public_base_url}/payments/onboarding/refresh"
    ]
    # a trainer may read the account but not open or change it
    refused = await h.client.post(url, headers=h.auth(TRAINER))
    assert (refused.status_code, refused.json()["code"]) == (403, "ORGANIZATION_ADMIN_REQUIRED")
    stranger = await h.client.get(account_url, headers=h.auth(BUYER))
    assert stranger.status_code == 404
    # the seller finishes Stripe's onboarding; Stripe's account.updated is a Connect event
    fake_stripe_api.enable(account["accountId"])
    enabled = {
        "id": account["accountId"],
        "object": "account",
        "charges_enabled": True,
        "payouts_enabled": True,
        "details_submitted": True,
    }
    payload = stripe_event("account.updated", enabled, account["accountId"])
    assert (await post_stripe(h, payload)).json() == {"status": "applied"}
    assert (await post_stripe(h, payload)).json() == {"status": "duplicate"}  # a replay
    after = await h.client.get(account_url, headers=h.auth(TRAINER))
    assert (after.json()["status"], after.json()["chargesEnabled"]) == ("enabled", True)
    again = await h.client.post(url, headers=h.auth(OWNER))
    assert again.json()["account"]["accountId"] == account["accountId"]
    assert fake_stripe_api.paths().count("/v1/accounts") == 1  # one account, ever


async def test_stripe_checkout_is_a_direct_charge_on_the_sellers_account_with_the_platform_fee(
    make_settings: Callable[..., Settings],
    identity: TestIdentity,
    fake_stripe_api: FakeStripe,
) -> None:
    settings = stripe_settings(make_settings, fake_stripe_api, platform_fee_bps=250)
    db = Database(settings.database_url, SERVICE.schema)
    async with AsyncTestClient(create_app(settings)) as client:
        h = Harness(client, db, Catalog(db, {}), identity, settings, fake_stripe_api.finish)
        _, _, txn = await stripe_paid_checkout(h)
        [call] = [c for c in fake_stripe_api.calls if c["path"] == "/v1/checkout/sessions"]
        assert call["stripe_account"] == txn["provider_account_id"]
        assert call["stripe_account"].startswith("acct_test_")
        assert call["body"]["line_items[0][price_data][unit_amount]"] == ["4900"]
        assert call["body"]["payment_intent_data[application_fee_amount]"] == ["122"]
        assert call["idempotency_key"] == f"coursemesh-checkout-{txn['id']}"
        base = settings.public_base_url
        assert call["body"]["success_url"] == [f"{base}/checkout/success?session={txn['id']}"]
        assert call["body"]["cancel_url"] == [f"{base}/checkout/cancelled?session={txn['id']}"]
    await db.dispose()


async def test_a_paid_checkout_of_a_seller_stripe_has_not_enabled_is_409_and_opens_nothing(
    stripe_harness: Harness, fake_stripe_api: FakeStripe
) -> None:
    h = stripe_harness
    org = await h.catalog.organization()
    await h.catalog.member(org, OWNER, role="owner")
    course = await h.catalog.course(org)
    await h.catalog.member(org, TRAINER)
    r = await h.client.patch(
        f"/organizations/{org}/courses/{course}/price",
        json={"priceInCents": 4900},
        headers=h.auth(TRAINER),
    )
    assert r.status_code == 200
    before = await h.snapshot()
    refused = await h.checkout(course)
    assert (refused.status_code, refused.json()["code"]) == (409, "PAYMENTS_NOT_ENABLED")
    assert await h.snapshot() == before
    started = await h.client.post(
        f"/organizations/{org}/payments/onboarding", headers=h.auth(OWNER)
    )
    assert started.status_code == 200
    before = await h.snapshot()
    refused = await h.checkout(course)  # onboarding begun, not finished
    assert (refused.status_code, refused.json()["code"]) == (409, "PAYMENTS_NOT_ENABLED")
    assert await h.snapshot() == before
    assert "/v1/checkout/sessions" not in fake_stripe_api.paths()


async def test_stripe_connect_events_activate_refund_and_dispute_on_the_sellers_account(
    stripe_harness: Harness,
) -> None:
    h = stripe_harness
    _, course, txn = await stripe_paid_checkout(h)
    account = txn["provider_account_id"]
    session = session_of(txn, "pi_123")
    forged = await post_stripe(
        h, stripe_event("checkout.session.completed", session, account), "whsec_other"
    )
    assert (forged.status_code, forged.json()["code"]) == (400, "WEBHOOK_SIGNATURE_INVALID")
    payload = stripe_event("checkout.session.completed", session, account)
    stale = await h.client.post(
        "/webhooks/stripe",
        content=payload,
        headers={"stripe-signature": stripe_signed(payload, at=int(time.time()) - 600)},
    )
    assert (stale.status_code, stale.json()["code"]) == (400, "WEBHOOK_TIMESTAMP_STALE")
    assert (await h.rows(entitlements))[0]["status"] == "pending"
    assert (await post_stripe(h, payload)).json() == {"status": "applied"}
    assert (await h.rows(entitlements))[0]["status"] == "active"
    before = await h.snapshot()
    assert (await post_stripe(h, payload)).json() == {"status": "duplicate"}  # a replay
    assert await h.snapshot() == before
    refund = {"id": "ch_1", "object": "charge", "payment_intent": "pi_123", "metadata": {}}
    r = await stripe_webhook(h, "charge.refunded", refund, account)
    assert r.json() == {"status": "applied"}
    [ent] = await h.rows(entitlements)
    assert ent["status"] == "revoked"
    # a second buyer's access, lost to a dispute
    r = await h.checkout(course, "user_disputer")
    assert r.status_code == 201, r.text
    [other] = await h.rows(payment_transactions, payment_transactions.c.user_id == "user_disputer")
    paid = stripe_event("checkout.session.completed", session_of(other, "pi_456"), account)
    assert (await post_stripe(h, paid)).json() == {"status": "applied"}
    dispute = {
        "id": "dp_1",
        "object": "dispute",
        "payment_intent": "pi_456",
        "reason": "fraudulent",
    }
    assert (await stripe_webhook(h, "charge.dispute.created", dispute, account)).status_code == 200
    [lost] = await h.rows(entitlements, entitlements.c.user_id == "user_disputer")
    assert lost["status"] == "revoked"


async def test_stripe_events_for_unknown_or_another_organizations_account_change_nothing(
    stripe_harness: Harness,
) -> None:
    h = stripe_harness
    _, _, txn_a = await stripe_paid_checkout(h)
    org_b, _ = await h.shop(price=4900)
    [account_b] = [
        a["account_id"] for a in await h.rows(payment_accounts) if a["organization_id"] == org_b
    ]
    before = await h.snapshot()
    unknown = await stripe_webhook(
        h, "checkout.session.completed", session_of(txn_a, "pi_1"), "acct_nobody"
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "UNKNOWN_CONNECTED_ACCOUNT")
    # signed by Stripe for org B's account, naming org A's checkout: refused, counted
    cross = await stripe_webhook(
        h, "checkout.session.completed", session_of(txn_a, "pi_2"), account_b
    )
    assert (cross.status_code, cross.json()["code"]) == (403, "WEBHOOK_CROSS_ORG")
    missing = await stripe_webhook(h, "checkout.session.completed", session_of(txn_a, "pi_3"), None)
    assert (missing.status_code, missing.json()["code"]) == (422, "WEBHOOK_ACCOUNT_MISSING")
    # the platform's own events (no account) that commerce does not act on are acknowledged
    own = {"id": "acct_platform", "object": "account", "charges_enabled": True}
    assert (await stripe_webhook(h, "account.updated", own, None)).json() == {"status": "ignored"}
    assert await h.snapshot() == before
    assert (await h.rows(entitlements))[0]["status"] == "pending"


async def test_stripe_completion_must_carry_the_checkout_amount_and_currency(
    stripe_harness: Harness,
) -> None:
    h = stripe_harness
    _, _, txn = await stripe_paid_checkout(h)
    account = txn["provider_account_id"]

    def completed(**fields: Any) -> str:
        return stripe_event(
            "checkout.session.completed", session_of(txn, "pi_456", **fields), account
        )

    before = await h.snapshot()
    for payload in (
        completed(amount_total=100),
        completed(currency="eur"),
        completed(amount_total=None, currency=None),  # says nothing of what was paid
    ):
        r = await post_stripe(h, payload)
        assert (r.status_code, r.json()["code"]) == (422, "WEBHOOK_AMOUNT_MISMATCH"), payload
    for malformed in (
        "not json",
        json.dumps({"id": "evt_1", "type": "checkout.session.completed", "data": []}),
        json.dumps({"id": "evt_2", "type": "checkout.session.completed", "data": {"object": []}}),
        json.dumps(
            {"id": "evt_3", "type": "account.updated", "account": 7, "data": {"object": {}}}
        ),
        completed(amount_total="4900"),
    ):
        r = await post_stripe(h, malformed)
        assert (r.status_code, r.json()["code"]) == (400, "WEBHOOK_MALFORMED"), malformed
    assert await h.snapshot() == before
    assert (await post_stripe(h, completed())).json() == {"status": "applied"}
    assert (await h.rows(entitlements))[0]["status"] == "active"


async def test_each_provider_serves_only_its_own_webhook_endpoint(
    stripe_harness: Harness, harness: Harness
) -> None:
    org = uuid.uuid4()
    sandbox_side = await harness.client.post("/webhooks/stripe", content=b"{}")
    assert (sandbox_side.status_code, sandbox_side.json()["code"]) == (
        404,
        "WEBHOOK_ENDPOINT_NOT_IN_USE",
    )
    stripe_side = await stripe_harness.client.post(f"/webhooks/payments/{org}", content=b"{}")
    assert (stripe_side.status_code, stripe_side.json()["code"]) == (
        404,
        "WEBHOOK_ENDPOINT_NOT_IN_USE",
    )


async def test_stripe_events_not_for_us_are_acknowledged_and_change_nothing(
    stripe_harness: Harness,
) -> None:
    h = stripe_harness
    _, _, txn = await stripe_paid_checkout(h)
    account = txn["provider_account_id"]
    before = await h.snapshot()
    # a live-mode event at the test-mode platform (Stripe sends both modes to an endpoint)
    live = stripe_event(
        "checkout.session.completed", session_of(txn, "pi_live"), account, livemode=True
    )
    assert (await post_stripe(h, live)).json() == {"status": "ignored"}
    assert await h.snapshot() == before
    # the seller's own sale on its Standard account, made without us: recorded, not applied
    own_sale = {
        "id": "cs_own",
        "object": "checkout.session",
        "payment_status": "paid",
        "payment_intent": "pi_own",
        "amount_total": 1000,
        "currency": "usd",
        "metadata": {},
    }
    r = await stripe_webhook(h, "checkout.session.completed", own_sale, account)
    assert r.json() == {"status": "ignored"}
    assert (await h.rows(entitlements))[0]["status"] == "pending"


async def test_a_checkout_stripe_refuses_is_422_not_a_retryable_502(
    stripe_harness: Harness, fake_stripe_api: FakeStripe
) -> None:
    h = stripe_harness
    _, course = await h.shop(price=4900)
    fake_stripe_api.sessions_api = "refuse"
    before = await h.snapshot()
    r = await h.checkout(course)
    assert (r.status_code, r.json()["code"]) == (422, "PAYMENT_PROVIDER_REFUSED")
    assert "Not a valid URL" in r.json()["detail"]
    assert await h.snapshot() == before
