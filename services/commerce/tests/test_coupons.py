"""Coupons against real PostgreSQL through the app: staff define them (bad ones refused, nothing
written), anyone previews a price, a checkout charges the price after the coupon (or opens
the course at once when nothing is left to pay), caps hold under concurrent checkouts, and a
use counts once its payment completes and gives its place back when the payment fails."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from commerce_support import BUYER, OWNER, TRAINER, Harness
from stripe_support import FakeStripe
from test_webhooks import post_webhook, press_pay

from coursemesh.commerce.adapters.sweeper_sql import DriverSweeperStore
from coursemesh.commerce.adapters.tables import (
    coupon_redemptions,
    entitlement_transitions,
    entitlements,
    payment_transactions,
)
from coursemesh.commerce.app.sweeper import expire_abandoned_checkouts


def coupons_url(org: uuid.UUID) -> str:
    return f"/organizations/{org}/coupons"


async def create(h: Harness, org: uuid.UUID, **body: Any) -> dict[str, Any]:
    r = await h.client.post(coupons_url(org), json=body, headers=h.auth(TRAINER))
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def checkout(
    h: Harness, course: uuid.UUID, code: str, user: str = BUYER, **extra: Any
) -> Any:
    return await h.client.post(
        f"/courses/{course}/checkout",
        json={"couponCode": code, **extra},
        headers=h.auth(user, email=f"{user}@example.com"),
    )


async def listed(h: Harness, org: uuid.UUID) -> dict[str, dict[str, Any]]:
    r = await h.client.get(coupons_url(org), headers=h.auth(TRAINER))
    assert r.status_code == 200, r.text
    return {c["code"]: c for c in r.json()["items"]}


async def test_staff_create_and_list_coupons_in_upper_case(harness: Harness) -> None:
    org, course = await harness.shop(price=4900)
    made = await create(harness, org, code="spring-25", percentOff=25, courseIds=[str(course)])
    assert (made["code"], made["percentOff"], made["amountOffCents"]) == ("SPRING-25", 25, None)
    assert (made["redemptions"], made["reserved"]) == (0, 0)
    assert list(await listed(harness, org)) == ["SPRING-25"]
    outsider = await harness.client.get(coupons_url(org), headers=harness.auth(BUYER))
    assert outsider.status_code == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"code": "BOTH", "percentOff": 10, "amountOffCents": 100}, "COUPON_INVALID"),
        ({"code": "NONE"}, "COUPON_INVALID"),
        (
            {
                "code": "BACKWARDS",
                "percentOff": 10,
                "validFrom": "2027-01-02T00:00:00Z",
                "validUntil": "2027-01-01T00:00:00Z",
            },
            "COUPON_INVALID",
        ),
        ({"code": "FOREIGN", "percentOff": 10, "courseIds": ["<foreign>"]}, "COUPON_INVALID"),
        ({"code": "taken", "percentOff": 10}, "COUPON_CODE_TAKEN"),
    ],
)
async def test_a_bad_coupon_is_refused_and_changes_nothing(
    harness: Harness, body: dict[str, Any], code: str
) -> None:
    org, _ = await harness.shop(price=4900)
    other_org = await harness.catalog.organization("Other studio")
    foreign = await harness.catalog.course(other_org)
    await create(harness, org, code="TAKEN", percentOff=5)
    if body.get("courseIds") == ["<foreign>"]:
        body = {**body, "courseIds": [str(foreign)]}
    before = await harness.snapshot()
    r = await harness.client.post(coupons_url(org), json=body, headers=harness.auth(TRAINER))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code
    assert await harness.snapshot() == before


@pytest.mark.parametrize(
    "body",
    [
        {"code": "X", "percentOff": 10},  # too short
        {"code": "TEN", "percentOff": 101},
        {"code": "TEN", "amountOffCents": -5},
        {"code": "TEN", "percentOff": 10, "validFrom": "2027-01-01T00:00:00"},  # no zone
        {"code": "TEN", "percentOff": "10"},
        {"code": "TEN", "percentOff": 10, "surprise": True},
    ],
)
async def test_a_malformed_coupon_body_is_400(harness: Harness, body: dict[str, Any]) -> None:
    org, _ = await harness.shop(price=4900)
    r = await harness.client.post(coupons_url(org), json=body, headers=harness.auth(TRAINER))
    assert r.status_code == 400, r.text


async def test_the_quote_shows_the_price_before_and_after_the_coupon(harness: Harness) -> None:
    org, course = await harness.shop(price=4999)
    await create(harness, org, code="THIRD", percentOff=33)
    await create(harness, org, code="FIVER", amountOffCents=500)
    await create(harness, org, code="HUGE", amountOffCents=100_000)
    plain = (await harness.client.get(f"/courses/{course}/quote")).json()
    assert (plain["priceInCents"], plain["totalInCents"], plain["coupon"]) == (4999, 4999, None)
    third = (await harness.client.get(f"/courses/{course}/quote?coupon=third")).json()
    # 33 % of 4999 is 1649.67: rounded half up to the minor unit
    assert (third["discountInCents"], third["totalInCents"]) == (1650, 3349)
    assert third["coupon"] == {"code": "THIRD", "percentOff": 33, "amountOffCents": None}
    fiver = (await harness.client.get(f"/courses/{course}/quote?coupon=FIVER")).json()
    assert (fiver["discountInCents"], fiver["totalInCents"]) == (500, 4499)
    huge = (await harness.client.get(f"/courses/{course}/quote?coupon=HUGE")).json()
    assert (huge["discountInCents"], huge["totalInCents"]) == (4999, 0)


async def test_a_coupon_that_does_not_apply_says_why(harness: Harness) -> None:
    org, course = await harness.shop(price=4900)
    other_course = await harness.catalog.course(org, "Another course")
    other_org = await harness.catalog.organization("Other studio")
    now = datetime.now(UTC)
    await create(harness, org, code="OTHERONLY", percentOff=10, courseIds=[str(other_course)])
    await create(
        harness, org, code="OVER", percentOff=10, validUntil=(now - timedelta(days=1)).isoformat()
    )
    await create(
        harness, org, code="LATER", percentOff=10, validFrom=(now + timedelta(days=1)).isoformat()
    )
    r = await harness.client.post(
        coupons_url(other_org),
        json={"code": "THEIRS", "percentOff": 50},
        headers=harness.auth(TRAINER),
    )
    assert r.status_code == 404  # the trainer is not staff there
    await harness.catalog.member(other_org, TRAINER)
    await create(harness, other_org, code="THEIRS", percentOff=50)
    for code, problem in [
        ("NOSUCH", "COUPON_NOT_FOUND"),
        ("THEIRS", "COUPON_NOT_FOUND"),  # another organization's coupon
        ("OTHERONLY", "COUPON_NOT_APPLICABLE"),
        ("OVER", "COUPON_NOT_ACTIVE"),
        ("LATER", "COUPON_NOT_ACTIVE"),
        ("bad code with spaces", "COUPON_NOT_FOUND"),
    ]:
        quoted = await harness.client.get(f"/courses/{course}/quote", params={"coupon": code})
        assert (quoted.status_code, quoted.json()["code"]) == (422, problem), code
        before = await harness.snapshot()
        r = await checkout(harness, course, code)
        assert (r.status_code, r.json()["code"]) == (422, problem), code
        assert await harness.snapshot() == before


async def test_a_paid_checkout_is_charged_after_the_coupon_and_counts_once_paid(
    harness: Harness,
) -> None:
    org, course = await harness.shop(price=4900)
    await create(harness, org, code="QUARTER", percentOff=25, maxRedemptions=10)
    r = await checkout(harness, course, "quarter")
    assert r.status_code == 201, r.text
    assert r.json()["paymentPageUrl"]
    [txn] = await harness.rows(payment_transactions)
    assert (txn["amount_in_cents"], str(txn["id"])) == (3675, r.json()["paymentId"])
    [use] = await harness.rows(coupon_redemptions)
    assert (use["payment_transaction_id"], use["discount_in_cents"]) == (txn["id"], 1225)
    [audit] = await harness.rows(entitlement_transitions)
    assert audit["reason"] == "coupon QUARTER"
    pending = (await listed(harness, org))["QUARTER"]
    assert (pending["redemptions"], pending["reserved"]) == (0, 1)
    await press_pay(harness, txn)
    completed = await post_webhook(harness, org, txn)
    assert completed.status_code == 200, completed.text
    again = await post_webhook(harness, org, txn)  # a replay counts nothing more
    assert again.status_code == 200, again.text
    summary = (await listed(harness, org))["QUARTER"]
    assert (summary["redemptions"], summary["reserved"]) == (1, 0)


async def test_a_coupon_taking_everything_off_opens_the_course_without_a_payment(
    harness: Harness,
) -> None:
    org, course = await harness.shop(price=4900)
    await create(harness, org, code="ONUS", percentOff=100)
    r = await checkout(harness, course, "ONUS")
    assert r.status_code == 201, r.text
    assert (r.json()["paymentPageUrl"], r.json()["paymentId"]) == (None, None)
    [ent] = await harness.rows(entitlements)
    assert ent["status"] == "active"
    assert await harness.rows(payment_transactions) == []
    [audit] = await harness.rows(entitlement_transitions)
    assert (audit["cause"], audit["reason"]) == ("free_checkout", "coupon ONUS")
    assert (await listed(harness, org))["ONUS"]["redemptions"] == 1


async def test_the_cap_holds_under_twenty_concurrent_checkouts(harness: Harness) -> None:
    org, course = await harness.shop(price=4900)
    await create(harness, org, code="FIRST5", percentOff=50, maxRedemptions=5)
    buyers = [f"user_buyer_{i}" for i in range(20)]
    answers = await asyncio.gather(*(checkout(harness, course, "FIRST5", b) for b in buyers))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 5 + [422] * 15, [a.text for a in answers]
    refused = {a.json()["code"] for a in answers if a.status_code == 422}
    assert refused == {"COUPON_EXHAUSTED"}
    assert len(await harness.rows(payment_transactions)) == 5
    assert len(await harness.rows(coupon_redemptions)) == 5
    assert (await listed(harness, org))["FIRST5"]["reserved"] == 5


async def test_a_failed_payment_gives_its_place_back(harness: Harness) -> None:
    org, course = await harness.shop(price=4900)
    await create(harness, org, code="ONLYONE", percentOff=10, maxRedemptions=1)
    assert (await checkout(harness, course, "ONLYONE")).status_code == 201
    second = await checkout(harness, course, "ONLYONE", "user_second")
    assert (second.status_code, second.json()["code"]) == (422, "COUPON_EXHAUSTED")
    [txn] = await harness.rows(payment_transactions)
    declined = await harness.client.post(
        f"/pay/{txn['provider_transaction_id']}/decline", follow_redirects=False
    )
    assert declined.status_code == 200, declined.text
    failed = await post_webhook(harness, org, txn, "payment.failed")
    assert failed.status_code == 200, failed.text
    again = await checkout(harness, course, "ONLYONE", "user_second")
    assert again.status_code == 201, again.text


async def test_the_per_buyer_cap_counts_other_courses_but_not_a_retried_checkout(
    harness: Harness,
) -> None:
    org, course = await harness.shop(price=4900)
    second_course = await harness.catalog.course(org, "Second course")
    r = await harness.client.patch(
        f"/organizations/{org}/courses/{second_course}/price",
        json={"priceInCents": 2900},
        headers=harness.auth(TRAINER),
    )
    assert r.status_code == 200, r.text
    await create(harness, org, code="ONCEEACH", percentOff=20, maxPerBuyer=1)
    assert (await checkout(harness, course, "ONCEEACH")).status_code == 201
    # the buyer comes back to the same checkout: the pending one is superseded, not counted
    retried = await checkout(harness, course, "ONCEEACH")
    assert retried.status_code == 201, retried.text
    other = await checkout(harness, second_course, "ONCEEACH")
    assert (other.status_code, other.json()["code"]) == (422, "COUPON_LIMIT_PER_BUYER")
    quoted = await harness.client.get(
        f"/courses/{second_course}/quote?coupon=ONCEEACH", headers=harness.auth(BUYER)
    )
    assert (quoted.status_code, quoted.json()["code"]) == (422, "COUPON_LIMIT_PER_BUYER")
    anonymous = await harness.client.get(f"/courses/{second_course}/quote?coupon=ONCEEACH")
    assert anonymous.status_code == 200
    summary = (await listed(harness, org))["ONCEEACH"]
    assert (summary["redemptions"], summary["reserved"]) == (0, 1)


async def test_an_idempotency_key_is_bound_to_the_coupon(harness: Harness) -> None:
    org, course = await harness.shop(price=4900)
    await create(harness, org, code="TENOFF", percentOff=10)
    await create(harness, org, code="TWENTYOFF", percentOff=20)
    key = {"Idempotency-Key": "k-1"}
    first = await harness.client.post(
        f"/courses/{course}/checkout",
        json={"couponCode": "TENOFF"},
        headers={**harness.auth(BUYER), **key},
    )
    assert first.status_code == 201, first.text
    other = await harness.client.post(
        f"/courses/{course}/checkout",
        json={"couponCode": "TWENTYOFF"},
        headers={**harness.auth(BUYER), **key},
    )
    assert (other.status_code, other.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")


async def test_a_coupon_on_a_custom_course_offer_is_refused(harness: Harness) -> None:
    org, _ = await harness.shop(price=4900)
    r = await harness.client.post(
        f"/organizations/{org}/custom-course-offers",
        json={"code": "XAB123", "title": "Custom plan", "priceInCents": 9900},
        headers=harness.auth(OWNER),
    )
    assert r.status_code == 201, r.text
    before = await harness.snapshot()
    r = await harness.client.post(
        "/custom-course-offers/XAB123/checkout",
        json={"couponCode": "ANY"},
        headers=harness.auth(BUYER),
    )
    assert (r.status_code, r.json()["code"]) == (422, "COUPON_NOT_APPLICABLE")
    assert await harness.snapshot() == before


async def test_stripe_is_asked_for_the_price_after_the_coupon(
    stripe_harness: Harness, fake_stripe_api: FakeStripe
) -> None:
    """Discounts are ours: Stripe gets a session for the final amount, no Stripe coupon."""
    h = stripe_harness
    org, course = await h.shop(price=4900)
    await create(h, org, code="STRIPE20", percentOff=20)
    r = await checkout(h, course, "stripe20")
    assert r.status_code == 201, r.text
    [call] = [c for c in fake_stripe_api.calls if c["path"] == "/v1/checkout/sessions"]
    assert call["body"]["line_items[0][price_data][unit_amount]"] == ["3920"]
    assert not [k for k in call["body"] if "discount" in k or "coupon" in k]


async def test_an_abandoned_checkout_swept_gives_its_place_back(harness: Harness) -> None:
    org, course = await harness.shop(price=4900)
    await create(harness, org, code="LASTONE", percentOff=10, maxRedemptions=1)
    assert (await checkout(harness, course, "LASTONE")).status_code == 201
    assert (await listed(harness, org))["LASTONE"]["reserved"] == 1
    ttl = timedelta(hours=24)
    later = datetime.now(UTC) + ttl + timedelta(seconds=1)
    assert await expire_abandoned_checkouts(DriverSweeperStore(harness.db), ttl=ttl, now=later) == 1
    summary = (await listed(harness, org))["LASTONE"]
    assert (summary["reserved"], summary["redemptions"]) == (0, 0)
    assert (await checkout(harness, course, "LASTONE", "user_second")).status_code == 201
