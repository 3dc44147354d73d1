"""Webhook activation, side effects, refunds, staff revoke and the sweeper ."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from commerce_support import BUYER, TRAINER, Harness
from prometheus_client.parser import text_string_to_metric_families

from coursemesh.chassis.testing import outbox_events
from coursemesh.commerce.adapters.sandbox import organization_webhook_secret, sign
from coursemesh.commerce.adapters.sweeper_sql import DriverSweeperStore
from coursemesh.commerce.adapters.tables import (
    entitlement_transitions,
    entitlements,
    payment_transactions,
    receipts,
    sandbox_sessions,
    webhook_events,
)
from coursemesh.commerce.app.metrics import (
    webhook_cross_org_mismatches,
    webhook_payment_mismatches,
)
from coursemesh.commerce.app.sweeper import expire_abandoned_checkouts


async def paid_checkout(h: Harness, price: int = 4900) -> tuple[uuid.UUID, dict[str, Any]]:
    org, course = await h.shop(price=price)
    assert (await h.checkout(course)).status_code == 201
    [txn] = await h.rows(payment_transactions)
    return org, txn


async def press_pay(h: Harness, txn: dict[str, Any]) -> None:
    """The buyer pays on the sandbox page and is sent on to the success page (the in-process
    app sends no webhook: the test does)."""
    session = txn["provider_transaction_id"]
    r = await h.client.post(f"/pay/{session}/pay", follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"].endswith(f"/checkout/success?session={txn['id']}")


async def post_webhook(
    h: Harness,
    org: uuid.UUID,
    txn: dict[str, Any],
    event_type: str = "payment.completed",
    *,
    event_id: str | None = None,
    at: datetime | None = None,
    secret_org: uuid.UUID | None = None,
    metadata: dict[str, str] | None = None,
    data: dict[str, Any] | None = None,
    raw_body: str | None = None,
    account: str | None = None,
) -> Any:
    """A sandbox webhook signed with the org's secret, on the payment's connected account (or
    ``account``); ``data`` overrides fields of the event's data, ``raw_body`` replaces the whole
    body (signed as it is)."""
    body = raw_body
    if body is None:
        body = json.dumps(
            {
                "id": event_id or f"evt_{uuid.uuid4().hex}",
                "type": event_type,
                "account": account or txn["provider_account_id"],
                "data": {
                    "sessionId": txn["provider_transaction_id"],
                    "amountInCents": txn["amount_in_cents"],
                    "currency": txn["currency"],
                    "metadata": txn["metadata"] if metadata is None else metadata,
                    "failureReason": None,
                    **(data or {}),
                },
            }
        )
    assert h.settings.sandbox_webhook_key is not None
    secret = organization_webhook_secret(h.settings.sandbox_webhook_key, secret_org or org)
    headers = sign(secret, f"msg_{uuid.uuid4().hex}", body, at or datetime.now(UTC))
    return await h.client.post(
        f"/webhooks/payments/{org}",
        content=body,
        headers={**headers, "content-type": "application/json"},
    )


async def test_webhook_activation_completed_pending_to_active_with_txn_link(
    harness: Harness,
) -> None:
    org, txn = await paid_checkout(harness)
    await press_pay(harness, txn)
    r = await post_webhook(harness, org, txn)
    assert (r.status_code, r.json()) == (200, {"status": "applied"})
    [ent] = await harness.rows(entitlements)
    assert (ent["status"], ent["access_revoked_at"], ent["source_payment_transaction_id"]) == (
        "active",
        None,
        txn["id"],
    )
    [done] = await harness.rows(payment_transactions)
    assert done["status"] == "completed"
    [receipt] = await harness.rows(receipts)  # side effects: receipt for a non-member (gap 1)
    assert receipt["email"] == f"{BUYER}@example.com"
    assert "49.00 USD" in receipt["body"]
    assert "Peak Form Studio" in receipt["body"]
    [completed] = await outbox_events(harness.db, "commerce.payment.completed.v1")
    assert completed.payload.entitlement_id == ent["id"]
    changes = await outbox_events(harness.db, "commerce.entitlement.changed.v1")
    assert [(e.payload.status, e.aggregate_version) for e in changes] == [
        ("pending", 1),
        ("active", 2),
    ]


async def test_idempotency_replayed_webhook_changes_nothing(harness: Harness) -> None:
    org, txn = await paid_checkout(harness)
    await press_pay(harness, txn)
    assert (await post_webhook(harness, org, txn, event_id="evt_same")).json()[
        "status"
    ] == "applied"
    before = await harness.rows(entitlements)
    r = await post_webhook(harness, org, txn, event_id="evt_same")
    assert (r.status_code, r.json()["status"]) == (200, "duplicate")
    assert await harness.rows(entitlements) == before
    assert await harness.count(receipts) == 1
    assert await harness.count(entitlement_transitions) == 2


async def webhook_outcomes(harness: Harness) -> dict[str, float]:
    """``commerce_webhook_outcomes_total`` per outcome, as the service's /metrics shows it."""
    scrape = await harness.client.get("/metrics")
    assert scrape.status_code == 200
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(scrape.text)
        for sample in family.samples
        if sample.name == "commerce_webhook_outcomes_total"
        and sample.labels["provider"] == "sandbox"
    }


async def test_webhook_outcomes_are_counted_on_the_metrics_endpoint(harness: Harness) -> None:
    org, txn = await paid_checkout(harness)
    await press_pay(harness, txn)
    before = await webhook_outcomes(harness)
    assert (await post_webhook(harness, org, txn, event_id="evt_counted")).status_code == 200
    assert (await post_webhook(harness, org, txn, event_id="evt_counted")).status_code == 200
    forged = await post_webhook(harness, org, txn, secret_org=uuid.uuid4())
    assert forged.status_code == 400
    after = await webhook_outcomes(harness)

    def added(outcome: str) -> float:
        return after.get(outcome, 0) - before.get(outcome, 0)

    assert (added("applied"), added("duplicate"), added("WEBHOOK_SIGNATURE_INVALID")) == (1, 1, 1)


async def test_idempotency_second_completion_on_active_row_is_status_noop(harness: Harness) -> None:
    """Webhook short-circuit: a new completion event for an active row only refreshes the link."""
    org, txn = await paid_checkout(harness)
    await press_pay(harness, txn)
    await post_webhook(harness, org, txn)
    r = await post_webhook(harness, org, txn)
    assert r.json()["status"] == "applied"
    [ent] = await harness.rows(entitlements)
    assert (ent["status"], ent["version"]) == ("active", 2)
    assert await harness.count(receipts) == 1
    assert await harness.count(entitlement_transitions) == 2


async def test_webhook_failure_pending_to_revoked_without_receipt(harness: Harness) -> None:
    org, txn = await paid_checkout(harness)
    r = await post_webhook(harness, org, txn, "payment.failed")
    assert r.status_code == 200
    [ent] = await harness.rows(entitlements)
    assert ent["status"] == "revoked"
    assert ent["access_revoked_at"] is not None
    assert await harness.count(receipts) == 0
    assert len(await outbox_events(harness.db, "commerce.payment.failed.v1")) == 1


async def test_edge_payment_fails_then_repurchase_reactivates_and_succeeds(
    harness: Harness,
) -> None:
    org, txn = await paid_checkout(harness)
    await post_webhook(harness, org, txn, "payment.failed")
    [ent] = await harness.rows(entitlements)
    r = await harness.checkout(ent["course_id"])
    assert r.json()["entitlementId"] == str(ent["id"])
    [retry] = await harness.rows(payment_transactions, payment_transactions.c.status == "pending")
    await press_pay(harness, retry)
    await post_webhook(harness, org, retry)
    [ent] = await harness.rows(entitlements)
    assert (ent["status"], ent["source_payment_transaction_id"]) == ("active", retry["id"])
    audit = await harness.rows(entitlement_transitions)
    assert [(a["from_status"], a["to_status"]) for a in audit] == [
        (None, "pending"),
        ("pending", "revoked"),
        ("revoked", "pending"),
        ("pending", "active"),
    ]


async def test_edge_refund_after_activation_revokes(harness: Harness) -> None:
    org, txn = await paid_checkout(harness)
    await press_pay(harness, txn)
    await post_webhook(harness, org, txn)
    r = await post_webhook(harness, org, txn, "payment.refunded")
    assert r.status_code == 200
    [ent] = await harness.rows(entitlements)
    assert ent["status"] == "revoked"
    assert len(await outbox_events(harness.db, "commerce.payment.refunded.v1")) == 1


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ("signature", "WEBHOOK_SIGNATURE_INVALID"),
        ("stale", "WEBHOOK_TIMESTAMP_STALE"),
        ("future", "WEBHOOK_TIMESTAMP_STALE"),
    ],
)
async def test_webhook_bad_signature_or_timestamp_is_400_and_changes_nothing(
    harness: Harness, tamper: str, code: str
) -> None:
    org, txn = await paid_checkout(harness)
    at = {
        "stale": datetime.now(UTC) - timedelta(minutes=6),
        "future": datetime.now(UTC) + timedelta(minutes=6),
    }.get(tamper)
    other = uuid.uuid4() if tamper == "signature" else None
    before = await harness.snapshot()
    r = await post_webhook(harness, org, txn, at=at, secret_org=other)
    assert (r.status_code, r.json()["code"]) == (400, code)
    assert await harness.snapshot() == before
    [ent] = await harness.rows(entitlements)
    assert ent["status"] == "pending"
    assert await harness.count(webhook_events) == 0


async def test_webhook_unknown_entitlement_in_metadata_is_404_and_changes_nothing(
    harness: Harness,
) -> None:
    org, txn = await paid_checkout(harness)
    before = await harness.snapshot()
    r = await post_webhook(harness, org, txn, metadata={"courseEntitlementId": str(uuid.uuid4())})
    assert (r.status_code, r.json()["code"]) == (404, "UNKNOWN_ENTITLEMENT")
    assert await harness.snapshot() == before
    assert await harness.count(webhook_events) == 0
    [ent] = await harness.rows(entitlements)
    assert ent["status"] == "pending"


async def test_edge_cross_org_webhook_logged_counted_and_refused(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    _org, txn = await paid_checkout(harness)
    attacker = await harness.catalog.organization("Attacker Gym")
    before = webhook_cross_org_mismatches.total
    rows = await harness.snapshot()
    with caplog.at_level(logging.ERROR, logger="coursemesh.commerce.webhooks"):
        r = await post_webhook(harness, attacker, txn)  # validly signed for the attacker's org
    assert (r.status_code, r.json()["code"]) == (403, "WEBHOOK_CROSS_ORG")
    assert await harness.snapshot() == rows
    assert webhook_cross_org_mismatches.total == before + 1
    assert any("cross-org mismatch" in rec.getMessage() for rec in caplog.records)
    [ent] = await harness.rows(entitlements)
    assert ent["status"] == "pending"
    assert await harness.count(webhook_events) == 0
    assert await harness.count(receipts) == 0


async def test_staff_revoke_active_entitlement_and_permissions(harness: Harness) -> None:
    org, txn = await paid_checkout(harness)
    await press_pay(harness, txn)
    await post_webhook(harness, org, txn)
    [ent] = await harness.rows(entitlements)
    url = f"/organizations/{org}/entitlements/{ent['id']}/revoke"
    for headers in ({}, harness.auth(BUYER)):
        r = await harness.client.post(url, json={"reason": "refund by hand"}, headers=headers)
        assert r.status_code in (401, 404)
        assert r.json()["code"] in ("MISSING_TOKEN", "NOT_FOUND")
    assert (await harness.rows(entitlements))[0]["status"] == "active"
    r = await harness.client.post(url, json={"reason": ""}, headers=harness.auth(TRAINER))
    assert (r.status_code, r.json()["code"]) == (400, "VALIDATION_FAILED")
    r = await harness.client.post(url, json={"reason": "chargeback"}, headers=harness.auth(TRAINER))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "revoked"
    [audit] = await harness.rows(
        entitlement_transitions, entitlement_transitions.c.cause == "staff_revoked"
    )
    assert (audit["actor"], audit["reason"]) == (f"user:{TRAINER}", "chargeback")
    r = await harness.client.post(url, json={"reason": "again"}, headers=harness.auth(TRAINER))
    assert (r.status_code, r.json()["code"]) == (409, "ILLEGAL_ENTITLEMENT_TRANSITION")
    page = await harness.client.get(
        f"/organizations/{org}/courses/{ent['course_id']}/entitlements?limit=1",
        headers=harness.auth(TRAINER),
    )
    assert page.json()["total"] == 1
    assert page.json()["items"][0]["status"] == "revoked"


async def test_edge_abandoned_checkout_swept_to_revoked_then_buyer_retries(
    harness: Harness,
) -> None:
    await paid_checkout(harness)
    ttl = timedelta(hours=24)
    sweeper = DriverSweeperStore(harness.db)
    assert await expire_abandoned_checkouts(sweeper, ttl=ttl) == 0
    later = datetime.now(UTC) + ttl + timedelta(seconds=1)
    assert await expire_abandoned_checkouts(sweeper, ttl=ttl, now=later) == 1
    [ent] = await harness.rows(entitlements)
    assert ent["status"] == "revoked"
    [audit] = await harness.rows(
        entitlement_transitions, entitlement_transitions.c.cause == "checkout_expired"
    )
    assert audit["reason"] == "checkout_expired"
    r = await harness.checkout(ent["course_id"])
    assert r.json()["entitlementId"] == str(ent["id"])
    assert (await harness.rows(entitlements))[0]["status"] == "pending"


# --- a verified webhook must match what the checkout charged ----------------------------------


@pytest.mark.parametrize(
    "data",
    [{"amountInCents": 100}, {"currency": "EUR"}, {"amountInCents": 100, "currency": "EUR"}],
    ids=["amount", "currency", "both"],
)
async def test_webhook_amount_or_currency_mismatch_is_422_logged_counted_and_changes_nothing(
    harness: Harness, caplog: pytest.LogCaptureFixture, data: dict[str, Any]
) -> None:
    org, txn = await paid_checkout(harness, price=4900)
    await press_pay(harness, txn)
    before = await harness.snapshot()
    counted = webhook_payment_mismatches.total
    with caplog.at_level(logging.WARNING, logger="coursemesh.commerce.webhooks"):
        r = await post_webhook(harness, org, txn, data=data)
    assert (r.status_code, r.json()["code"]) == (422, "WEBHOOK_AMOUNT_MISMATCH")
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await harness.snapshot() == before  # not activated, not completed, no receipt
    [ent] = await harness.rows(entitlements)
    assert ent["status"] == "pending"
    assert webhook_payment_mismatches.total == counted + 1
    assert any(
        rec.levelno == logging.WARNING and "WEBHOOK_AMOUNT_MISMATCH" in rec.getMessage()
        for rec in caplog.records
    )
    # the genuine event still applies afterwards
    ok = await post_webhook(harness, org, txn)
    assert ok.json() == {"status": "applied"}


async def test_webhook_refund_with_another_amount_is_refused(harness: Harness) -> None:
    org, txn = await paid_checkout(harness)
    await press_pay(harness, txn)
    await post_webhook(harness, org, txn)
    before = await harness.snapshot()
    r = await post_webhook(harness, org, txn, "payment.refunded", data={"amountInCents": 1})
    assert (r.status_code, r.json()["code"]) == (422, "WEBHOOK_AMOUNT_MISMATCH")
    assert await harness.snapshot() == before
    assert (await harness.rows(entitlements))[0]["status"] == "active"


async def test_webhook_naming_another_purchase_than_its_transaction_is_422(
    harness: Harness,
) -> None:
    """A paid cheap session cannot complete another (pending) checkout of the same buyer."""
    org, cheap_course = await harness.shop(price=500)
    dear_course = await harness.catalog.course(org, "Dear course")
    r = await harness.client.patch(
        f"/organizations/{org}/courses/{dear_course}/price",
        json={"priceInCents": 50_000},
        headers=harness.auth(TRAINER),
    )
    assert r.status_code == 200, r.text
    assert (await harness.checkout(cheap_course)).status_code == 201
    assert (await harness.checkout(dear_course)).status_code == 201
    [cheap] = await harness.rows(
        payment_transactions, payment_transactions.c.amount_in_cents == 500
    )
    [dear] = await harness.rows(
        payment_transactions, payment_transactions.c.amount_in_cents == 50_000
    )
    await press_pay(harness, cheap)
    before = await harness.snapshot()
    # the paid cheap transaction, but the dear course's entitlement
    r = await post_webhook(
        harness,
        org,
        cheap,
        metadata={**cheap["metadata"], "courseEntitlementId": str(dear["entitlement_id"])},
    )
    assert (r.status_code, r.json()["code"]) == (422, "WEBHOOK_PAYMENT_MISMATCH")
    # the dear checkout's own metadata and amount, but the paid cheap session
    r = await post_webhook(harness, org, dear, data={"sessionId": cheap["provider_transaction_id"]})
    assert (r.status_code, r.json()["code"]) == (422, "WEBHOOK_PAYMENT_MISMATCH")
    assert await harness.snapshot() == before
    assert {e["status"] for e in await harness.rows(entitlements)} == {"pending"}


# --- the sandbox applies only what its own page settled ---------------------------------------


@pytest.mark.parametrize("page", [None, "decline"], ids=["open", "declined"])
async def test_sandbox_completion_of_a_session_its_page_did_not_settle_is_409(
    harness: Harness, page: str | None
) -> None:
    org, txn = await paid_checkout(harness)
    if page is not None:
        r = await harness.client.post(f"/pay/{txn['provider_transaction_id']}/{page}")
        assert r.status_code == 200, r.text
    before = await harness.snapshot()
    counted = webhook_payment_mismatches.total
    r = await post_webhook(harness, org, txn)  # correctly signed, amount and currency right
    assert (r.status_code, r.json()["code"]) == (409, "WEBHOOK_SESSION_NOT_SETTLED")
    assert await harness.snapshot() == before
    [ent] = await harness.rows(entitlements)
    assert ent["status"] == "pending"
    [session] = await harness.rows(sandbox_sessions)
    assert session["status"] == ("open" if page is None else "declined")
    assert webhook_payment_mismatches.total == counted + 1


# --- a signed body that is not an event ---------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "this is not json",
        '{"id": "evt_1", "type": "payment.completed"',
        "[]",
        '{"id": "evt_1", "type": "payment.completed", "data": []}',
        "SESSION_AS_NUMBER",
        "NO_AMOUNT",
    ],
    ids=["text", "truncated", "array", "data-array", "session-number", "no-amount"],
)
async def test_signed_malformed_webhook_is_400_malformed_and_changes_nothing(
    harness: Harness, body: str
) -> None:
    org, txn = await paid_checkout(harness)
    await press_pay(harness, txn)
    event: dict[str, Any] = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "payment.completed",
        "data": {
            "sessionId": txn["provider_transaction_id"],
            "amountInCents": txn["amount_in_cents"],
            "currency": txn["currency"],
            "metadata": txn["metadata"],
        },
    }
    if body == "SESSION_AS_NUMBER":
        event["data"]["sessionId"] = 12345
        body = json.dumps(event)
    elif body == "NO_AMOUNT":
        del event["data"]["amountInCents"]
        body = json.dumps(event)
    before = await harness.snapshot()
    r = await post_webhook(harness, org, txn, raw_body=body)
    assert (r.status_code, r.json()["code"]) == (400, "WEBHOOK_MALFORMED")
    assert await harness.snapshot() == before
    # the same body under a signature of another key is still a signature failure
    forged = await post_webhook(harness, org, txn, raw_body=body, secret_org=uuid.uuid4())
    assert (forged.status_code, forged.json()["code"]) == (400, "WEBHOOK_SIGNATURE_INVALID")
    assert await harness.snapshot() == before
