"""Gifted courses: the gift checkout (no entitlement for anyone), the payment's webhook that
mails the recipient a claim link (read from a real SMTP server), the claim and its refusals,
refunds before and after the claim, the payer's list and resend."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from commerce_support import BUYER, TRAINER, Harness
from test_receipts import mails_to, sender
from test_webhooks import post_webhook, press_pay

from coursemesh.chassis.testing import outbox_events
from coursemesh.commerce.adapters.sweeper_sql import DriverSweeperStore
from coursemesh.commerce.adapters.tables import (
    entitlement_transitions,
    entitlements,
    gifts,
    payment_transactions,
    receipts,
)
from coursemesh.commerce.app.sweeper import expire_abandoned_payments

FRIEND = "user_friend"
OTHER = "user_other"
_LINK = re.compile(r"https?://\S+/gifts/([A-Za-z0-9_-]+)")


def recipient() -> str:
    """A fresh address per test: the SMTP server's mailbox is shared by the session."""
    return f"friend-{uuid.uuid4().hex[:10]}@gift.example"


async def gift_checkout(
    h: Harness, course: uuid.UUID, to: str, user: str = BUYER, **headers: str
) -> Any:
    return await h.client.post(
        f"/courses/{course}/checkout",
        json={"giftRecipientEmail": to},
        headers={**h.auth(user, email=f"{user}@example.com"), **headers},
    )


async def claim(h: Harness, token: str, user: str = FRIEND) -> Any:
    return await h.client.post(f"/gifts/{token}/claim", headers=h.auth(user))


async def payment_of(h: Harness, payment_id: str) -> dict[str, Any]:
    [txn] = await h.rows(payment_transactions, payment_transactions.c.id == uuid.UUID(payment_id))
    return txn


async def links_mailed(h: Harness, smtp_server: Any, to: str) -> list[str]:
    """Send the queued mail over SMTP (the in-process app runs no sender) and read the claim
    tokens of every mail ``to`` received, oldest first."""
    await sender(h, smtp_server).send_due()
    tokens = []
    for mail in mails_to(smtp_server, to):
        found = _LINK.search(mail.get_body(("plain",)).get_content())
        assert found is not None, mail
        tokens.append(found.group(1))
    return tokens


async def paid_gift(h: Harness, smtp_server: Any) -> tuple[uuid.UUID, dict[str, Any], str, str]:
    """A gift bought and paid for a fresh address; its org, payment, id and mailed token."""
    org, course = await h.shop()
    to = recipient()
    r = await gift_checkout(h, course, to)
    assert r.status_code == 201, r.text
    txn = await payment_of(h, r.json()["paymentId"])
    await press_pay(h, txn)
    assert (await post_webhook(h, org, txn)).json() == {"status": "applied"}
    [token] = await links_mailed(h, smtp_server, to)
    return org, txn, r.json()["giftId"], token


async def test_a_gift_checkout_opens_a_gift_and_one_payment_and_no_entitlement(
    harness: Harness,
) -> None:
    _org, course = await harness.shop()
    to = recipient()
    r = await gift_checkout(harness, course, f"  {to.upper().split('@')[0]}@GIFT.example ")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["paymentPageUrl"]
    assert body["entitlementId"] is None
    [gift] = await harness.rows(gifts)
    [txn] = await harness.rows(payment_transactions)
    assert (str(gift["id"]), str(txn["id"])) == (body["giftId"], body["paymentId"])
    assert gift["recipient_email"] == to.upper().split("@")[0] + "@gift.example"
    assert (gift["status"], gift["payer_user_id"], gift["claim_token_hash"]) == (
        "pending",
        BUYER,
        None,
    )
    assert txn["metadata"]["giftId"] == body["giftId"]
    assert (txn["entitlement_id"], txn["amount_in_cents"]) == (None, 4900)
    assert await harness.rows(entitlements) == []


async def test_completion_mails_the_recipient_a_link_that_claims_the_course_for_the_claimer(
    harness: Harness, smtp_server: Any
) -> None:
    _org, txn, gift_id, token = await paid_gift(harness, smtp_server)
    [gift] = await harness.rows(gifts)
    assert gift["status"] == "paid"
    assert gift["sent_at"] is not None
    assert await harness.rows(entitlements) == []  # nobody has it before the claim
    # the payer gets their receipt as for any purchase
    assert {r["email"] for r in await harness.rows(receipts)} >= {f"{BUYER}@example.com"}

    r = await claim(harness, token)
    assert r.status_code == 200, r.text
    [ent] = await harness.rows(entitlements)
    assert (ent["user_id"], ent["status"], ent["source_payment_transaction_id"]) == (
        FRIEND,
        "active",
        txn["id"],
    )
    assert r.json()["entitlement"]["entitlementId"] == str(ent["id"])
    [step] = await harness.rows(entitlement_transitions)
    assert (step["cause"], step["actor"], step["reason"], step["payment_transaction_id"]) == (
        "gift_claimed",
        f"user:{FRIEND}",
        f"gift {gift_id}",
        txn["id"],
    )
    [changed] = await outbox_events(harness.db, "commerce.entitlement.changed.v2")
    assert (changed.payload.cause, changed.payload.user_id) == ("gift_claimed", FRIEND)
    # the payment's event names the gift it paid for (there was no entitlement yet)
    [completed] = await outbox_events(harness.db, "commerce.payment.completed.v1")
    assert (str(completed.payload.gift_id), completed.payload.entitlement_id) == (gift_id, None)
    [gift] = await harness.rows(gifts)
    assert (gift["status"], gift["claimed_by"], gift["entitlement_id"]) == (
        "claimed",
        FRIEND,
        ent["id"],
    )


async def test_a_gift_is_claimed_once_by_anyone(harness: Harness, smtp_server: Any) -> None:
    _, _, _, token = await paid_gift(harness, smtp_server)
    assert (await claim(harness, token)).status_code == 200
    before = await harness.snapshot()
    for user in (FRIEND, OTHER):
        again = await claim(harness, token, user)
        assert (again.status_code, again.json()["code"]) == (409, "GIFT_ALREADY_CLAIMED")
    assert await harness.snapshot() == before


async def test_the_payers_own_account_cannot_claim(harness: Harness, smtp_server: Any) -> None:
    _, _, _, token = await paid_gift(harness, smtp_server)
    before = await harness.snapshot()
    r = await claim(harness, token, BUYER)
    assert (r.status_code, r.json()["code"]) == (403, "GIFT_OWN_PURCHASE")
    assert await harness.snapshot() == before
    assert (await claim(harness, token)).status_code == 200  # still the recipient's


async def test_an_unknown_token_is_not_found(harness: Harness) -> None:
    await harness.shop()
    before = await harness.snapshot()
    r = await claim(harness, "not-a-token-of-ours")
    assert (r.status_code, r.json()["code"]) == (404, "GIFT_NOT_FOUND")
    assert await harness.snapshot() == before


async def test_claiming_needs_a_signed_in_user(harness: Harness, smtp_server: Any) -> None:
    _, _, _, token = await paid_gift(harness, smtp_server)
    r = await harness.client.post(f"/gifts/{token}/claim")
    assert r.status_code == 401
    assert (await harness.client.get("/me/gifts")).status_code == 401


async def test_a_claimer_who_owns_the_course_is_refused_and_the_gift_stays_claimable(
    harness: Harness, smtp_server: Any
) -> None:
    org, _txn, _, token = await paid_gift(harness, smtp_server)
    # the friend bought the course themselves meanwhile
    assert (
        await harness.checkout(txn_course(await harness.rows(gifts)), FRIEND)
    ).status_code == 201
    mine = await harness.rows(payment_transactions, payment_transactions.c.user_id == FRIEND)
    await press_pay(harness, mine[0])
    assert (await post_webhook(harness, org, mine[0])).status_code == 200
    before = await harness.snapshot()
    r = await claim(harness, token)
    assert (r.status_code, r.json()["code"]) == (409, "COURSE_ALREADY_OWNED")
    assert await harness.snapshot() == before
    assert (await claim(harness, token, OTHER)).status_code == 200


def txn_course(rows: list[dict[str, Any]]) -> uuid.UUID:
    course: uuid.UUID = rows[0]["course_id"]
    return course


async def test_a_claimer_with_an_open_checkout_of_the_course_waits(
    harness: Harness, smtp_server: Any
) -> None:
    _, _, _, token = await paid_gift(harness, smtp_server)
    assert (
        await harness.checkout(txn_course(await harness.rows(gifts)), FRIEND)
    ).status_code == 201
    before = await harness.snapshot()
    r = await claim(harness, token)
    assert (r.status_code, r.json()["code"]) == (409, "CHECKOUT_PENDING")
    assert await harness.snapshot() == before


async def test_a_refund_before_the_claim_cancels_the_gift_and_its_link(
    harness: Harness, smtp_server: Any
) -> None:
    org, txn, _, token = await paid_gift(harness, smtp_server)
    refunded = await post_webhook(harness, org, txn, "payment.refunded")
    assert refunded.status_code == 200, refunded.text
    [gift] = await harness.rows(gifts)
    assert gift["status"] == "cancelled"
    before = await harness.snapshot()
    r = await claim(harness, token)
    assert (r.status_code, r.json()["code"]) == (410, "GIFT_CANCELLED")
    assert await harness.snapshot() == before
    assert await harness.rows(entitlements) == []


async def test_a_refund_after_the_claim_revokes_the_recipients_access(
    harness: Harness, smtp_server: Any
) -> None:
    org, txn, _, token = await paid_gift(harness, smtp_server)
    assert (await claim(harness, token)).status_code == 200
    assert (await post_webhook(harness, org, txn, "payment.refunded")).status_code == 200
    [ent] = await harness.rows(entitlements)
    assert (ent["user_id"], ent["status"]) == (FRIEND, "revoked")
    steps = await harness.rows(entitlement_transitions)
    assert sorted(s["cause"] for s in steps) == ["gift_claimed", "payment_refunded"]
    [gift] = await harness.rows(gifts)
    assert gift["status"] == "refunded"


async def test_a_failed_payment_ends_the_gift_and_mails_nobody(
    harness: Harness, smtp_server: Any
) -> None:
    org, course = await harness.shop()
    to = recipient()
    r = await gift_checkout(harness, course, to)
    txn = await payment_of(harness, r.json()["paymentId"])
    failed = await post_webhook(harness, org, txn, "payment.failed")
    assert failed.status_code == 200, failed.text
    [gift] = await harness.rows(gifts)
    assert (gift["status"], gift["claim_token_hash"]) == ("failed", None)
    assert await links_mailed(harness, smtp_server, to) == []


async def test_resend_rotates_the_token_so_the_old_link_stops_working(
    harness: Harness, smtp_server: Any
) -> None:
    _, _, gift_id, first = await paid_gift(harness, smtp_server)
    [gift] = await harness.rows(gifts)
    r = await harness.client.post(f"/me/gifts/{gift_id}/resend", headers=harness.auth(BUYER))
    assert r.status_code == 200, r.text
    assert r.json()["sendCount"] == 2
    old, new = await links_mailed(harness, smtp_server, gift["recipient_email"])
    assert old == first
    assert new != first
    gone = await claim(harness, old)
    assert (gone.status_code, gone.json()["code"]) == (404, "GIFT_NOT_FOUND")
    assert (await claim(harness, new)).status_code == 200
    after = await harness.client.post(f"/me/gifts/{gift_id}/resend", headers=harness.auth(BUYER))
    assert (after.status_code, after.json()["code"]) == (409, "GIFT_ALREADY_CLAIMED")


async def test_another_users_gift_is_not_found(harness: Harness, smtp_server: Any) -> None:
    _, _, gift_id, _ = await paid_gift(harness, smtp_server)
    before = await harness.snapshot()
    r = await harness.client.post(f"/me/gifts/{gift_id}/resend", headers=harness.auth(OTHER))
    assert (r.status_code, r.json()["code"]) == (404, "GIFT_NOT_FOUND")
    assert await harness.snapshot() == before
    listed = await harness.client.get("/me/gifts", headers=harness.auth(OTHER))
    assert listed.json()["items"] == []


async def test_the_payer_lists_their_gifts(harness: Harness, smtp_server: Any) -> None:
    _, _, gift_id, token = await paid_gift(harness, smtp_server)
    assert (await claim(harness, token)).status_code == 200
    r = await harness.client.get("/me/gifts", headers=harness.auth(BUYER))
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert (item["giftId"], item["status"], item["courseName"]) == (
        gift_id,
        "claimed",
        "30-day reset",
    )
    assert item["recipientEmail"].endswith("@gift.example")
    assert item["claimedAt"]
    assert item["sentAt"]
    assert r.json()["total"] == 1


async def test_a_malformed_recipient_is_refused_with_422(harness: Harness) -> None:
    _, course = await harness.shop()
    before = await harness.snapshot()
    for bad in ("", "not-an-address", "a@b", "ann@example.com\r\nBcc: x@y.example", "a b@c.de"):
        r = await gift_checkout(harness, course, bad)
        assert (r.status_code, r.json()["code"]) == (422, "GIFT_RECIPIENT_INVALID"), bad
    wrong_type = await harness.client.post(
        f"/courses/{course}/checkout",
        json={"giftRecipientEmail": 5},
        headers=harness.auth(BUYER),
    )
    assert wrong_type.status_code == 400
    assert await harness.snapshot() == before


async def test_a_gift_takes_no_coupon_and_no_free_course(harness: Harness) -> None:
    _, course = await harness.shop()
    before = await harness.snapshot()
    r = await harness.client.post(
        f"/courses/{course}/checkout",
        json={"giftRecipientEmail": recipient(), "couponCode": "SPRING"},
        headers=harness.auth(BUYER),
    )
    assert (r.status_code, r.json()["code"]) == (422, "COUPON_NOT_APPLICABLE")
    assert await harness.snapshot() == before
    _, free = await harness.shop(price=0)
    before = await harness.snapshot()
    r = await gift_checkout(harness, free, recipient())
    assert (r.status_code, r.json()["code"]) == (409, "GIFT_COURSE_FREE")
    assert await harness.snapshot() == before


async def test_an_idempotency_key_answers_again_and_binds_the_recipient(harness: Harness) -> None:
    _, course = await harness.shop()
    to = recipient()
    first = await gift_checkout(harness, course, to, **{"Idempotency-Key": "gift-1"})
    again = await gift_checkout(harness, course, to, **{"Idempotency-Key": "gift-1"})
    assert first.status_code == 201
    assert again.json() == first.json()
    assert await harness.count(gifts) == 1
    other = await gift_checkout(harness, course, recipient(), **{"Idempotency-Key": "gift-1"})
    assert (other.status_code, other.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    plain = await harness.client.post(
        f"/courses/{course}/checkout", headers={**harness.auth(BUYER), "Idempotency-Key": "gift-1"}
    )
    assert (plain.status_code, plain.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert await harness.count(gifts) == 1


async def test_a_completion_of_another_amount_is_refused_and_changes_nothing(
    harness: Harness, smtp_server: Any
) -> None:
    org, course = await harness.shop()
    to = recipient()
    r = await gift_checkout(harness, course, to)
    txn = await payment_of(harness, r.json()["paymentId"])
    await press_pay(harness, txn)
    before = await harness.snapshot()
    wrong = await post_webhook(harness, org, txn, data={"amountInCents": 100})
    assert (wrong.status_code, wrong.json()["code"]) == (422, "WEBHOOK_AMOUNT_MISMATCH")
    assert await harness.snapshot() == before
    assert await links_mailed(harness, smtp_server, to) == []


async def test_a_webhook_naming_another_gift_is_refused(harness: Harness) -> None:
    org, course = await harness.shop()
    first = await gift_checkout(harness, course, recipient())
    second = await gift_checkout(harness, course, recipient())
    txn = await payment_of(harness, first.json()["paymentId"])
    await press_pay(harness, txn)
    before = await harness.snapshot()
    metadata = {**txn["metadata"], "giftId": second.json()["giftId"]}
    r = await post_webhook(harness, org, txn, metadata=metadata)
    assert (r.status_code, r.json()["code"]) == (422, "WEBHOOK_PAYMENT_MISMATCH")
    assert await harness.snapshot() == before


async def test_concurrent_claims_of_one_link_give_the_course_once(
    harness: Harness, smtp_server: Any
) -> None:
    _, _, _, token = await paid_gift(harness, smtp_server)
    claimers = [f"user_claimer_{i}" for i in range(4)]
    answers = await asyncio.gather(*(claim(harness, token, u) for u in claimers))
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    [ent] = await harness.rows(entitlements)
    [winner] = [u for u, a in zip(claimers, answers, strict=True) if a.status_code == 200]
    assert ent["user_id"] == winner
    steps = await harness.rows(
        entitlement_transitions, entitlement_transitions.c.cause == sa.literal("gift_claimed")
    )
    assert len(steps) == 1


async def test_a_gift_of_time_limited_access_lasts_from_the_claim(
    harness: Harness, smtp_server: Any
) -> None:
    org, course = await harness.shop()
    priced = await harness.client.patch(
        f"/organizations/{org}/courses/{course}/price",
        json={"priceInCents": 4900, "accessDays": 30},
        headers=harness.auth(TRAINER),
    )
    assert priced.status_code == 200, priced.text
    to = recipient()
    r = await gift_checkout(harness, course, to)
    assert r.status_code == 201, r.text
    txn = await payment_of(harness, r.json()["paymentId"])
    assert txn["access_days"] == 30
    await press_pay(harness, txn)
    assert (await post_webhook(harness, org, txn)).status_code == 200
    [token] = await links_mailed(harness, smtp_server, to)
    assert (await claim(harness, token)).status_code == 200
    [ent] = await harness.rows(entitlements)
    assert ent["access_ends_at"] == ent["status_changed_at"] + timedelta(days=30)


async def test_an_abandoned_gift_checkout_ends_with_its_payment(harness: Harness) -> None:
    _org, course = await harness.shop()
    r = await gift_checkout(harness, course, recipient())
    assert r.status_code == 201, r.text
    txn = await payment_of(harness, r.json()["paymentId"])
    ttl = timedelta(seconds=harness.settings.checkout_ttl_seconds)
    later = txn["created_at"] + ttl + timedelta(seconds=1)
    # the sandbox's session just runs out, sending no expiry: the sweeper ends the gift
    assert await expire_abandoned_payments(DriverSweeperStore(harness.db), ttl=ttl, now=later) == 1
    assert (await payment_of(harness, r.json()["paymentId"]))["status"] == "expired"
    [gift] = await harness.rows(gifts)
    assert gift["status"] == "failed"
    mine = await harness.client.get("/me/gifts", headers=harness.auth(BUYER))
    assert [g["status"] for g in mine.json()["items"]] == ["failed"]
