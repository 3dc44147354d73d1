"""Course bundles against real PostgreSQL through the app: staff define them (bad ones refused,
nothing written), anyone sees an available one, a checkout opens one entitlement per course
with ONE payment, the provider's webhook settles them all, a partly owned bundle is prorated,
and a bundle's pending entitlements meet the one-open-payment rule and the sweeper."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from commerce_support import BUYER, MEMBER, OWNER, TRAINER, Harness
from test_webhooks import post_webhook, press_pay

from coursemesh.chassis.testing import outbox_events
from coursemesh.commerce.adapters.sweeper_sql import DriverSweeperStore
from coursemesh.commerce.adapters.tables import (
    bundle_purchase_items,
    bundle_purchases,
    bundles,
    entitlement_transitions,
    entitlements,
    payment_transactions,
    plans,
    sandbox_sessions,
)
from coursemesh.commerce.app.sweeper import expire_abandoned_checkouts


async def priced_course(h: Harness, org: uuid.UUID, price: int | None, name: str) -> uuid.UUID:
    course = await h.catalog.course(org, name)
    if price is not None:
        r = await h.client.patch(
            f"/organizations/{org}/courses/{course}/price",
            json={"priceInCents": price},
            headers=h.auth(TRAINER),
        )
        assert r.status_code == 200, r.text
    return course


async def store(
    h: Harness, prices: tuple[int, ...] = (3000, 2000, 1000)
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """An onboarded org with a trainer and published courses at ``prices``."""
    org, first = await h.shop(price=prices[0])
    rest = [await priced_course(h, org, p, f"Course {i}") for i, p in enumerate(prices[1:])]
    return org, [first, *rest]


async def create(
    h: Harness, org: uuid.UUID, courses: list[Any], price: int = 4000, user: str = TRAINER
) -> Any:
    return await h.client.post(
        f"/organizations/{org}/bundles",
        json={
            "name": "Full program",
            "courseIds": [str(c) for c in courses],
            "priceInCents": price,
        },
        headers=h.auth(user),
    )


async def bundle_of(h: Harness, org: uuid.UUID, courses: list[uuid.UUID], price: int = 4000) -> str:
    r = await create(h, org, courses, price)
    assert r.status_code == 201, r.text
    bundle_id: str = r.json()["bundleId"]
    return bundle_id


async def buy(h: Harness, bundle_id: str, user: str = BUYER, **headers: str) -> Any:
    return await h.client.post(
        f"/bundles/{bundle_id}/checkout",
        headers={**h.auth(user, email=f"{user}@example.com"), **headers},
    )


async def the_payment(h: Harness) -> dict[str, Any]:
    [txn] = await h.rows(payment_transactions)
    return txn


async def statuses(h: Harness) -> dict[uuid.UUID, str]:
    return {e["course_id"]: e["status"] for e in await h.rows(entitlements)}


# --- staff ----------------------------------------------------------------------------------


async def test_staff_create_and_list_a_bundle_in_the_plans_currency(harness: Harness) -> None:
    org, courses = await store(harness)
    r = await create(harness, org, courses, 4500)
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["name"], made["priceInCents"], made["currency"]) == ("Full program", 4500, "USD")
    assert made["courseIds"] == [str(c) for c in courses]
    listed = await harness.client.get(
        f"/organizations/{org}/bundles", headers=harness.auth(TRAINER)
    )
    assert listed.status_code == 200
    assert [b["bundleId"] for b in listed.json()["items"]] == [made["bundleId"]]
    assert listed.json()["total"] == 1


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("foreign", "BUNDLE_FOREIGN_COURSE"),
        ("unknown", "BUNDLE_FOREIGN_COURSE"),
        ("one", "BUNDLE_INVALID"),
        ("duplicate", "BUNDLE_INVALID"),
        ("unpriced", "BUNDLE_COURSE_UNPRICED"),
        ("blank name", "BUNDLE_INVALID"),
    ],
)
async def test_a_bad_bundle_is_refused_and_changes_nothing(
    harness: Harness, case: str, code: str
) -> None:
    org, courses = await store(harness)
    other = await harness.catalog.organization("Other studio")
    foreign = await harness.catalog.course(other)
    unknown = uuid.uuid4()
    unpriced = await priced_course(harness, org, None, "No plan yet")
    named: list[Any] = {
        "foreign": [courses[0], foreign],
        "unknown": [courses[0], courses[1], unknown],
        "one": [courses[0]],
        "duplicate": [courses[0], courses[0], courses[1]],
        "unpriced": [courses[0], unpriced],
        "blank name": courses,
    }[case]
    before = await harness.snapshot()
    body = {"name": "  " if case == "blank name" else "B", "courseIds": [str(c) for c in named]}
    r = await harness.client.post(
        f"/organizations/{org}/bundles",
        json={**body, "priceInCents": 100},
        headers=harness.auth(TRAINER),
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code
    if case in ("foreign", "unknown"):
        assert str(foreign if case == "foreign" else unknown) in r.json()["detail"]
        assert str(courses[0]) not in r.json()["detail"]
    assert await harness.snapshot() == before


async def test_courses_priced_in_two_currencies_make_no_bundle(harness: Harness) -> None:
    org, courses = await store(harness)
    async with harness.db.engine.begin() as conn:  # a plan priced before a currency change
        await conn.execute(
            plans.update().where(plans.c.course_id == courses[1]).values(currency="EUR")
        )
    r = await create(harness, org, courses)
    assert (r.status_code, r.json()["code"]) == (422, "BUNDLE_CURRENCY_MIXED")
    assert await harness.count(bundles) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"name": "B", "courseIds": [], "priceInCents": -1},
        {"name": "B", "courseIds": ["not-a-uuid"], "priceInCents": 100},
        {"name": "B", "courseIds": [], "priceInCents": "100"},
        {"name": "B", "courseIds": [], "priceInCents": 1.5},
        {"name": "B", "courseIds": [], "priceInCents": 100, "surprise": True},
        {"courseIds": [], "priceInCents": 100},
    ],
)
async def test_a_malformed_bundle_body_is_400(harness: Harness, body: dict[str, Any]) -> None:
    org, _ = await store(harness)
    r = await harness.client.post(
        f"/organizations/{org}/bundles", json=body, headers=harness.auth(TRAINER)
    )
    assert r.status_code == 400, r.text


async def test_only_the_organizations_staff_create_or_list_bundles(harness: Harness) -> None:
    org, courses = await store(harness)
    other = await harness.catalog.organization("Other studio")
    await harness.catalog.member(other, "user_other_trainer")
    await harness.catalog.member(org, MEMBER, role="member")
    for user in (BUYER, MEMBER, "user_other_trainer"):
        assert (await create(harness, org, courses, user=user)).status_code == 404
        listed = await harness.client.get(
            f"/organizations/{org}/bundles", headers=harness.auth(user)
        )
        assert listed.status_code == 404
    # staff of another organization cannot bundle this one's courses in theirs either
    r = await create(harness, other, courses, user="user_other_trainer")
    assert (r.status_code, r.json()["code"]) == (422, "BUNDLE_FOREIGN_COURSE")
    assert await harness.count(bundles) == 0


async def test_a_missing_or_bad_token_is_401(harness: Harness) -> None:
    org, courses = await store(harness)
    bundle_id = await bundle_of(harness, org, courses)
    body = {"name": "B", "courseIds": [str(c) for c in courses], "priceInCents": 1}
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        assert (
            await harness.client.post(f"/organizations/{org}/bundles", json=body, headers=headers)
        ).status_code == 401
        assert (
            await harness.client.get(f"/organizations/{org}/bundles", headers=headers)
        ).status_code == 401
        assert (
            await harness.client.post(f"/bundles/{bundle_id}/checkout", headers=headers)
        ).status_code == 401
    assert await harness.count(payment_transactions) == 0


# --- the storefront -------------------------------------------------------------------------


async def test_anyone_sees_an_available_bundle_with_its_courses_prices(harness: Harness) -> None:
    org, courses = await store(harness)
    bundle_id = await bundle_of(harness, org, courses, 4000)
    r = await harness.client.get(f"/public/bundles/{bundle_id}")
    assert r.status_code == 200, r.text
    seen = r.json()
    assert (seen["name"], seen["priceInCents"], seen["currency"]) == ("Full program", 4000, "USD")
    assert [(c["courseId"], c["listPriceInCents"]) for c in seen["courses"]] == [
        (str(courses[0]), 3000),
        (str(courses[1]), 2000),
        (str(courses[2]), 1000),
    ]


async def test_a_bundle_with_an_archived_course_is_not_on_sale(harness: Harness) -> None:
    org, courses = await store(harness)
    bundle_id = await bundle_of(harness, org, courses)
    await harness.catalog.archive(org, courses[1])
    r = await harness.client.get(f"/public/bundles/{bundle_id}")
    assert (r.status_code, r.json()["code"]) == (404, "BUNDLE_NOT_FOUND")
    bought = await buy(harness, bundle_id)
    assert (bought.status_code, bought.json()["code"]) == (404, "BUNDLE_NOT_FOUND")
    assert (await harness.client.get(f"/public/bundles/{uuid.uuid4()}")).status_code == 404
    assert await harness.count(entitlements) == 0


# --- checkout and its payment ---------------------------------------------------------------


async def test_one_checkout_one_payment_one_pending_entitlement_per_course(
    harness: Harness,
) -> None:
    org, courses = await store(harness)
    bundle_id = await bundle_of(harness, org, courses, 4000)
    r = await buy(harness, bundle_id)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert (answer["amountInCents"], answer["currency"], answer["excludedCourseIds"]) == (
        4000,
        "USD",
        [],
    )
    assert {c["courseId"] for c in answer["courses"]} == {str(c) for c in courses}
    assert answer["paymentPageUrl"]
    txn = await the_payment(harness)
    assert (txn["amount_in_cents"], txn["status"], txn["entitlement_id"]) == (4000, "pending", None)
    assert txn["metadata"]["bundlePurchaseId"] == answer["bundlePurchaseId"]
    assert str(txn["bundle_purchase_id"]) == answer["bundlePurchaseId"]
    assert await statuses(harness) == dict.fromkeys(courses, "pending")
    [purchase] = await harness.rows(bundle_purchases)
    assert purchase["payment_transaction_id"] == txn["id"]
    items = await harness.rows(bundle_purchase_items)
    assert {i["entitlement_id"] for i in items} == {
        e["id"] for e in await harness.rows(entitlements)
    }
    steps = await harness.rows(entitlement_transitions)
    assert {(s["cause"], s["payment_transaction_id"]) for s in steps} == {
        ("paid_checkout", txn["id"])
    }
    assert await harness.count(sandbox_sessions) == 1


async def test_the_completion_webhook_activates_every_course(harness: Harness) -> None:
    org, courses = await store(harness)
    bundle_id = await bundle_of(harness, org, courses)
    assert (await buy(harness, bundle_id)).status_code == 201
    txn = await the_payment(harness)
    await press_pay(harness, txn)
    r = await post_webhook(harness, org, txn)
    assert (r.status_code, r.json()) == (200, {"status": "applied"})
    ents = await harness.rows(entitlements)
    assert {(e["status"], e["source_payment_transaction_id"]) for e in ents} == {
        ("active", txn["id"])
    }
    assert len(ents) == 3
    paid = await the_payment(harness)
    assert paid["status"] == "completed"
    [completed] = await outbox_events(harness.db, "commerce.payment.completed.v1")
    assert (completed.payload.bundle_purchase_id, completed.payload.entitlement_id) == (
        paid["bundle_purchase_id"],
        None,
    )


async def test_a_refund_of_the_bundle_payment_revokes_every_course(harness: Harness) -> None:
    org, courses = await store(harness)
    bundle_id = await bundle_of(harness, org, courses)
    await buy(harness, bundle_id)
    txn = await the_payment(harness)
    await press_pay(harness, txn)
    await post_webhook(harness, org, txn)
    r = await post_webhook(harness, org, txn, "payment.refunded")
    assert (r.status_code, r.json()["status"]) == (200, "applied")
    assert await statuses(harness) == dict.fromkeys(courses, "revoked")
    revokes = [
        s for s in await harness.rows(entitlement_transitions) if s["cause"] == "payment_refunded"
    ]
    assert {(s["actor"], s["payment_transaction_id"]) for s in revokes} == {
        ("provider-webhook", txn["id"])
    }
    assert len(revokes) == 3
    changes = await outbox_events(harness.db, "commerce.entitlement.changed.v2")
    revoked = [e for e in changes if e.payload.cause == "payment_refunded"]
    assert {(e.payload.status, e.payload.course_id) for e in revoked} == {
        ("revoked", c) for c in courses
    }


async def test_a_failed_payment_ends_every_pending_course(harness: Harness) -> None:
    org, courses = await store(harness)
    await buy(harness, await bundle_of(harness, org, courses))
    txn = await the_payment(harness)
    r = await post_webhook(harness, org, txn, "payment.failed")
    assert r.status_code == 200, r.text
    assert await statuses(harness) == dict.fromkeys(courses, "revoked")


async def test_a_webhook_with_another_amount_is_refused_and_changes_nothing(
    harness: Harness,
) -> None:
    org, courses = await store(harness)
    await buy(harness, await bundle_of(harness, org, courses))
    txn = await the_payment(harness)
    await press_pay(harness, txn)
    before = await harness.snapshot()
    r = await post_webhook(harness, org, txn, data={"amountInCents": 1})
    assert (r.status_code, r.json()["code"]) == (422, "WEBHOOK_AMOUNT_MISMATCH")
    assert await harness.snapshot() == before


async def test_a_webhook_naming_another_bundle_purchase_is_refused(harness: Harness) -> None:
    org, courses = await store(harness)
    bundle_id = await bundle_of(harness, org, courses)
    await buy(harness, bundle_id)
    await buy(harness, bundle_id, "user_second")
    first, second = sorted(await harness.rows(payment_transactions), key=lambda t: t["user_id"])
    metadata = {**second["metadata"], "bundlePurchaseId": first["metadata"]["bundlePurchaseId"]}
    before = await harness.snapshot()
    r = await post_webhook(harness, org, second, metadata=metadata)
    assert r.status_code in (404, 422), r.text
    assert await harness.snapshot() == before


async def test_a_webhook_of_another_organization_is_refused(harness: Harness) -> None:
    org, courses = await store(harness)
    await buy(harness, await bundle_of(harness, org, courses))
    txn = await the_payment(harness)
    other = await harness.catalog.organization("Other studio")
    await harness.onboard(other)
    before = await harness.snapshot()
    r = await post_webhook(harness, other, txn)
    assert (r.status_code, r.json()["code"]) == (403, "WEBHOOK_CROSS_ORG")
    assert await harness.snapshot() == before


async def test_a_free_bundle_opens_every_course_at_once(harness: Harness) -> None:
    org, courses = await store(harness)
    r = await buy(harness, await bundle_of(harness, org, courses, 0))
    assert r.status_code == 201, r.text
    assert (r.json()["paymentPageUrl"], r.json()["amountInCents"]) == (None, 0)
    assert await statuses(harness) == dict.fromkeys(courses, "active")
    assert await harness.count(payment_transactions) == 0
    [purchase] = await harness.rows(bundle_purchases)
    assert purchase["payment_transaction_id"] is None


async def test_the_same_idempotency_key_answers_the_first_checkout(harness: Harness) -> None:
    org, courses = await store(harness)
    bundle_id = await bundle_of(harness, org, courses)
    first = await buy(harness, bundle_id, **{"Idempotency-Key": "bundle-1"})
    again = await buy(harness, bundle_id, **{"Idempotency-Key": "bundle-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert await harness.count(payment_transactions) == 1
    assert await harness.count(bundle_purchases) == 1
    other = await bundle_of(harness, org, courses[:2])
    reused = await buy(harness, other, **{"Idempotency-Key": "bundle-1"})
    assert (reused.status_code, reused.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")


# --- courses the buyer owns -----------------------------------------------------------------


async def own(h: Harness, org: uuid.UUID, course: uuid.UUID) -> None:
    """The buyer owns ``course``: a staff grant (comp access, active at once)."""
    r = await h.client.post(
        f"/organizations/{org}/courses/{course}/grants",
        json={"userId": BUYER, "reason": "already a client"},
        headers=h.auth(TRAINER),
    )
    assert r.status_code == 201, r.text


async def test_owned_courses_are_left_out_and_the_price_prorated(harness: Harness) -> None:
    org, courses = await store(harness, (3000, 2000, 1000))
    bundle_id = await bundle_of(harness, org, courses, 4999)
    await own(harness, org, courses[1])
    r = await buy(harness, bundle_id)
    assert r.status_code == 201, r.text
    # 4999 * 4000 / 6000 = 3332.67 -> 3333
    assert (r.json()["amountInCents"], r.json()["excludedCourseIds"]) == (3333, [str(courses[1])])
    assert {c["courseId"] for c in r.json()["courses"]} == {str(courses[0]), str(courses[2])}
    assert (await the_payment(harness))["amount_in_cents"] == 3333
    assert await statuses(harness) == {
        courses[0]: "pending",
        courses[1]: "active",
        courses[2]: "pending",
    }


async def test_a_buyer_owning_every_course_is_told_so(harness: Harness) -> None:
    org, courses = await store(harness, (3000, 2000))
    bundle_id = await bundle_of(harness, org, courses)
    for course in courses:
        await own(harness, org, course)
    before = await harness.snapshot()
    r = await buy(harness, bundle_id)
    assert (r.status_code, r.json()["code"]) == (409, "COURSE_ALREADY_OWNED")
    assert await harness.snapshot() == before


# --- one open payment per entitlement, and the sweeper --------------------------------------


async def test_a_course_checkout_supersedes_the_bundle_payment_it_would_double(
    harness: Harness,
) -> None:
    org, courses = await store(harness)
    await buy(harness, await bundle_of(harness, org, courses))
    bundle_txn = await the_payment(harness)
    r = await harness.checkout(courses[0])
    assert r.status_code == 201, r.text
    by_id = {t["id"]: t for t in await harness.rows(payment_transactions)}
    assert by_id[bundle_txn["id"]]["status"] == "superseded"
    open_ones = [t for t in by_id.values() if t["status"] == "pending"]
    assert [t["entitlement_id"] for t in open_ones] == [uuid.UUID(r.json()["entitlementId"])]
    [session] = await harness.rows(
        sandbox_sessions, sandbox_sessions.c.id == bundle_txn["provider_transaction_id"]
    )
    assert session["status"] == "expired"  # the bundle can no longer be paid at the provider


async def test_a_bundle_checkout_supersedes_a_course_payment_still_open(harness: Harness) -> None:
    org, courses = await store(harness)
    bundle_id = await bundle_of(harness, org, courses)
    course_checkout = await harness.checkout(courses[0])
    assert course_checkout.status_code == 201
    course_txn = await the_payment(harness)
    assert (await buy(harness, bundle_id)).status_code == 201
    by_id = {t["id"]: t for t in await harness.rows(payment_transactions)}
    assert by_id[course_txn["id"]]["status"] == "superseded"
    assert [
        t["bundle_purchase_id"] is not None for t in by_id.values() if t["status"] == "pending"
    ] == [True]


async def test_a_bundle_paid_meanwhile_is_not_charged_again(harness: Harness) -> None:
    org, courses = await store(harness)
    bundle_id = await bundle_of(harness, org, courses)
    await buy(harness, bundle_id)
    await press_pay(harness, await the_payment(harness))  # paid; the webhook not yet applied
    before = await harness.snapshot()
    again = await buy(harness, bundle_id)
    assert (again.status_code, again.json()["code"]) == (409, "PREVIOUS_PAYMENT_COMPLETED")
    course = await harness.checkout(courses[1])
    assert (course.status_code, course.json()["code"]) == (409, "PREVIOUS_PAYMENT_COMPLETED")
    assert await harness.snapshot() == before


async def test_the_sweeper_ends_a_bundle_checkout_naming_its_payment(harness: Harness) -> None:
    org, courses = await store(harness)
    await buy(harness, await bundle_of(harness, org, courses))
    txn = await the_payment(harness)
    ttl = timedelta(hours=24)
    later = datetime.now(UTC) + ttl + timedelta(seconds=1)
    assert await expire_abandoned_checkouts(DriverSweeperStore(harness.db), ttl=ttl, now=later) == 3
    assert await statuses(harness) == dict.fromkeys(courses, "revoked")
    expiries = [
        s for s in await harness.rows(entitlement_transitions) if s["cause"] == "checkout_expired"
    ]
    assert {s["payment_transaction_id"] for s in expiries} == {txn["id"]}
    # the buyer paid after all: a completion after the checkout expired still buys the courses
    await press_pay(harness, txn)
    assert (await post_webhook(harness, org, txn)).status_code == 200
    assert await statuses(harness) == dict.fromkeys(courses, "active")


async def test_a_course_active_through_another_payment_is_left_as_it_is(harness: Harness) -> None:
    org, courses = await store(harness)
    await buy(harness, await bundle_of(harness, org, courses))
    txn = await the_payment(harness)
    ttl = timedelta(hours=24)
    later = datetime.now(UTC) + ttl + timedelta(seconds=1)
    await expire_abandoned_checkouts(DriverSweeperStore(harness.db), ttl=ttl, now=later)
    await own(harness, org, courses[0])  # comp access meanwhile
    await press_pay(harness, txn)
    assert (await post_webhook(harness, org, txn)).status_code == 200
    ents = {e["course_id"]: e for e in await harness.rows(entitlements)}
    assert (ents[courses[0]]["status"], ents[courses[0]]["source_payment_transaction_id"]) == (
        "active",
        None,
    )
    assert {ents[c]["source_payment_transaction_id"] for c in courses[1:]} == {txn["id"]}
    assert (await the_payment(harness))["status"] == "completed"


# --- what the course checkout's body does ---------------------------------------------------


async def test_return_urls_are_the_course_checkouts_own(harness: Harness) -> None:
    org, courses = await store(harness)
    bundle_id = await bundle_of(harness, org, courses)
    shop = "https://shop.example.com/checkout"
    r = await harness.client.put(
        f"/organizations/{org}/return-url-allowlist",
        json={"urls": [shop]},
        headers=harness.auth(OWNER),
    )
    assert r.status_code == 200, r.text
    before = await harness.snapshot()
    refused = await harness.client.post(
        f"/bundles/{bundle_id}/checkout",
        json={"successUrl": "https://evil.example.com/checkout"},
        headers=harness.auth(BUYER),
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "RETURN_URL_NOT_ALLOWED")
    coupon = await harness.client.post(
        f"/bundles/{bundle_id}/checkout",
        json={"couponCode": "HALF"},
        headers=harness.auth(BUYER),
    )
    assert (coupon.status_code, coupon.json()["code"]) == (422, "COUPON_NOT_APPLICABLE")
    assert await harness.snapshot() == before
    bought = await harness.client.post(
        f"/bundles/{bundle_id}/checkout",
        json={"successUrl": f"{shop}/done"},
        headers=harness.auth(BUYER),
    )
    assert bought.status_code == 201, bought.text
    [session] = await harness.rows(sandbox_sessions)
    assert session["success_url"] == f"{shop}/done"


async def test_a_bundle_course_has_no_self_service_refund(harness: Harness) -> None:
    org, courses = await store(harness)
    await buy(harness, await bundle_of(harness, org, courses))
    txn = await the_payment(harness)
    await press_pay(harness, txn)
    await post_webhook(harness, org, txn)
    r = await harness.client.post(
        f"/me/courses/{courses[0]}/refund-request", headers=harness.auth(BUYER)
    )
    assert (r.status_code, r.json()["code"]) == (409, "REFUNDS_NOT_OFFERED")


async def test_a_free_course_of_a_paid_bundle_waits_for_the_payment_with_the_others(
    harness: Harness,
) -> None:
    org, courses = await store(harness, (3000, 0))
    r = await buy(harness, await bundle_of(harness, org, courses, 2500))
    assert r.status_code == 201, r.text
    assert r.json()["amountInCents"] == 2500
    assert await statuses(harness) == dict.fromkeys(courses, "pending")
