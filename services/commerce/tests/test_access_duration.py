"""Time-limited access against real PostgreSQL through the app and the sandbox provider: a plan's
``accessDays`` makes access end that many days after it opens; buying again while it lasts
extends it from its current end; the worker tells the buyer beforehand (once per end date) and
ends it with reason ``expired``. The worker's clock is the test's: it runs with a chosen now."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from commerce_support import BUYER, TRAINER, Harness
from test_receipts import mails_to, sender
from test_webhooks import post_webhook, press_pay

from coursemesh.commerce.adapters.access_sql import DriverAccessExpiryStore
from coursemesh.commerce.adapters.sweeper_sql import DriverSweeperStore
from coursemesh.commerce.adapters.tables import (
    entitlements,
    payment_transactions,
    payment_transitions,
    receipts,
)
from coursemesh.commerce.app.access_expiry import end_expired_access, queue_expiry_notices
from coursemesh.commerce.app.sweeper import expire_abandoned_payments

NOTICE = timedelta(days=3)


async def set_plan(h: Harness, org: uuid.UUID, course: uuid.UUID, **body: Any) -> Any:
    r = await h.client.patch(
        f"/organizations/{org}/courses/{course}/price", json=body, headers=h.auth(TRAINER)
    )
    assert r.status_code == 200, r.text
    return r.json()


async def limited_shop(h: Harness, days: int, price: int = 4900) -> tuple[uuid.UUID, uuid.UUID]:
    org, course = await h.shop(price=price)
    plan = await set_plan(h, org, course, priceInCents=price, accessDays=days)
    assert plan["accessDays"] == days
    return org, course


async def pay_open_payment(h: Harness, org: uuid.UUID) -> dict[str, Any]:
    """The buyer pays the checkout's open payment; the provider's completion is delivered."""
    [txn] = await h.rows(payment_transactions, payment_transactions.c.status == "pending")
    await press_pay(h, txn)
    r = await post_webhook(h, org, txn)
    assert r.status_code == 200, r.text
    [paid] = await h.rows(payment_transactions, payment_transactions.c.id == txn["id"])
    return paid


async def the_entitlement(h: Harness) -> dict[str, Any]:
    [ent] = await h.rows(entitlements)
    return ent


async def causes(h: Harness, course: uuid.UUID, user: str = BUYER) -> list[tuple[str, str | None]]:
    r = await h.client.get(f"/me/courses/{course}/history", headers=h.auth(user))
    assert r.status_code == 200, r.text
    return [(e["cause"], e["reason"]) for e in r.json()["items"]]


def expiry_store(h: Harness) -> DriverAccessExpiryStore:
    return DriverAccessExpiryStore(h.db, lambda: None)


async def test_a_paid_limited_access_ends_n_days_after_the_payment(harness: Harness) -> None:
    org, course = await limited_shop(harness, days=30)
    assert (await harness.checkout(course)).status_code == 201
    pending = await the_entitlement(harness)
    assert (pending["status"], pending["access_ends_at"]) == ("pending", None)
    paid = await pay_open_payment(harness, org)
    assert (paid["access_days"], paid["renewal"]) == (30, False)
    ent = await the_entitlement(harness)
    assert ent["status"] == "active"
    assert ent["access_ends_at"] == paid["completed_at"] + timedelta(days=30)
    listed = await harness.client.get(
        f"/organizations/{org}/courses/{course}/entitlements", headers=harness.auth(TRAINER)
    )
    [view] = listed.json()["items"]
    assert datetime.fromisoformat(view["accessEndsAt"]) == ent["access_ends_at"]


async def test_a_free_limited_course_opens_with_its_end_at_once(harness: Harness) -> None:
    _, course = await limited_shop(harness, days=7, price=0)
    r = await harness.checkout(course)
    assert r.status_code == 201, r.text
    ent = await the_entitlement(harness)
    assert ent["status"] == "active"
    assert ent["access_ends_at"] == ent["status_changed_at"] + timedelta(days=7)


async def test_lifetime_access_is_owned_and_its_plan_says_so(harness: Harness) -> None:
    org, course = await harness.shop(price=0)
    plan = await set_plan(harness, org, course, priceInCents=0)
    assert plan["accessDays"] is None
    assert (await harness.checkout(course)).status_code == 201
    assert (await the_entitlement(harness))["access_ends_at"] is None
    again = await harness.checkout(course)
    assert (again.status_code, again.json()["code"]) == (409, "COURSE_ALREADY_OWNED")


async def test_buying_again_while_it_lasts_extends_from_the_current_end(harness: Harness) -> None:
    org, course = await limited_shop(harness, days=30)
    assert (await harness.checkout(course)).status_code == 201
    first = await pay_open_payment(harness, org)
    end = (await the_entitlement(harness))["access_ends_at"]
    renewal = await harness.checkout(course)
    assert renewal.status_code == 201, renewal.text
    assert renewal.json()["paymentPageUrl"]
    # the access goes on while the renewal's payment is open
    during = await the_entitlement(harness)
    assert (during["status"], during["access_ends_at"]) == ("active", end)
    second = await pay_open_payment(harness, org)
    assert (second["access_days"], second["renewal"], second["status"]) == (30, True, "completed")
    renewed = await the_entitlement(harness)
    assert renewed["status"] == "active"
    assert renewed["access_ends_at"] == end + timedelta(days=30)
    assert renewed["source_payment_transaction_id"] == second["id"] != first["id"]
    # the provider delivers the completion again: the end does not move twice
    replay = await post_webhook(harness, org, second)
    assert replay.status_code == 200, replay.text
    assert (await the_entitlement(harness))["access_ends_at"] == end + timedelta(days=30)
    assert await causes(harness, course) == [
        ("paid_checkout", None),
        ("payment_completed", None),
        ("renewal_checkout", None),
        ("access_renewed", None),
    ]


async def test_a_renewal_after_the_end_counts_from_now(harness: Harness) -> None:
    org, course = await limited_shop(harness, days=10)
    assert (await harness.checkout(course)).status_code == 201
    await pay_open_payment(harness, org)
    # the end has passed but the worker has not run yet: the access is still active
    async with harness.db.engine.begin() as conn:
        await conn.execute(
            sa.update(entitlements).values(
                access_ends_at=entitlements.c.access_ends_at - timedelta(days=20)
            )
        )
    assert (await harness.checkout(course)).status_code == 201
    second = await pay_open_payment(harness, org)
    renewed = await the_entitlement(harness)
    assert renewed["access_ends_at"] == second["completed_at"] + timedelta(days=10)


async def test_a_free_renewal_extends_at_once(harness: Harness) -> None:
    _, course = await limited_shop(harness, days=5, price=0)
    assert (await harness.checkout(course)).status_code == 201
    end = (await the_entitlement(harness))["access_ends_at"]
    again = await harness.checkout(course)
    assert again.status_code == 201, again.text
    assert again.json()["paymentPageUrl"] is None
    assert (await the_entitlement(harness))["access_ends_at"] == end + timedelta(days=5)


async def test_the_duration_sold_is_the_one_that_counts(harness: Harness) -> None:
    org, course = await limited_shop(harness, days=30)
    assert (await harness.checkout(course)).status_code == 201
    # the seller changes the plan while the buyer is on the payment page
    await set_plan(harness, org, course, priceInCents=4900, accessDays=365)
    paid = await pay_open_payment(harness, org)
    ent = await the_entitlement(harness)
    assert ent["access_ends_at"] == paid["completed_at"] + timedelta(days=30)
    # a price change without the field keeps the duration; null makes access lifetime
    kept = await set_plan(harness, org, course, priceInCents=5900)
    assert kept["accessDays"] == 365
    lifetime = await set_plan(harness, org, course, priceInCents=5900, accessDays=None)
    assert lifetime["accessDays"] is None


async def test_bad_durations_are_refused_and_change_nothing(harness: Harness) -> None:
    org, course = await limited_shop(harness, days=30)
    before = await harness.snapshot()
    for bad in (0, -1, 3651, "30", 1.5, True):
        r = await harness.client.patch(
            f"/organizations/{org}/courses/{course}/price",
            json={"priceInCents": 4900, "accessDays": bad},
            headers=harness.auth(TRAINER),
        )
        assert r.status_code == 400, (bad, r.text)
    stranger = await harness.client.patch(
        f"/organizations/{org}/courses/{course}/price",
        json={"priceInCents": 4900, "accessDays": 1},
        headers=harness.auth(BUYER),
    )
    # a stranger to the organization is not told that the course exists
    assert stranger.status_code == 404, stranger.text
    assert await harness.snapshot() == before


async def test_the_buyer_is_told_once_before_the_end_then_the_access_ends(
    harness: Harness, smtp_server: Any
) -> None:
    org, course = await limited_shop(harness, days=30)
    # a buyer of this test only: the SMTP server's mailbox is shared by the session's tests
    buyer = f"buyer-{uuid.uuid4().hex[:8]}"
    assert (await harness.checkout(course, user=buyer)).status_code == 201
    await pay_open_payment(harness, org)
    end = (await the_entitlement(harness))["access_ends_at"]
    store = expiry_store(harness)
    # too early for the notice, and the access lasts
    assert (
        await queue_expiry_notices(store, now=end - NOTICE - timedelta(seconds=1), notice=NOTICE)
        == 0
    )
    assert await end_expired_access(store, now=end - timedelta(seconds=1)) == 0
    # inside the notice period: one notice, whichever replica looks again
    assert await queue_expiry_notices(store, now=end - NOTICE, notice=NOTICE) == 1
    assert await queue_expiry_notices(store, now=end - timedelta(days=1), notice=NOTICE) == 0
    [notice] = await harness.rows(receipts, receipts.c.user_id.is_not(None))
    assert notice["user_id"] == buyer
    assert await sender(harness, smtp_server).send_due() == 2  # the payment's receipt, the notice
    [mail] = [
        m
        for m in mails_to(smtp_server, f"{buyer}@example.com")
        if m["Subject"] == notice["subject"]
    ]
    assert mail["Subject"].startswith("Your access to ")
    assert "buy the course again" in mail.get_body(("plain",)).get_content()
    # the end: revoked with reason expired, once
    assert await end_expired_access(store, now=end) == 1
    assert await end_expired_access(store, now=end + timedelta(hours=1)) == 0
    ent = await the_entitlement(harness)
    assert (ent["status"], ent["access_revoked_at"], ent["access_ends_at"]) == ("revoked", end, end)
    assert (await causes(harness, course, buyer))[-1] == ("access_expired", "expired")
    # after the end, buying again is an ordinary checkout of the revoked row
    again = await harness.checkout(course, user=buyer)
    assert again.status_code == 201, again.text
    assert (await the_entitlement(harness))["status"] == "pending"


async def test_a_renewal_earns_a_notice_for_its_new_end(harness: Harness) -> None:
    _, course = await limited_shop(harness, days=5, price=0)
    assert (await harness.checkout(course)).status_code == 201
    end = (await the_entitlement(harness))["access_ends_at"]
    store = expiry_store(harness)
    assert await queue_expiry_notices(store, now=end - timedelta(days=1), notice=NOTICE) == 1
    assert (await harness.checkout(course)).status_code == 201
    new_end = (await the_entitlement(harness))["access_ends_at"]
    assert new_end == end + timedelta(days=5)
    assert await queue_expiry_notices(store, now=end - timedelta(days=1), notice=NOTICE) == 0
    assert await queue_expiry_notices(store, now=new_end - timedelta(days=1), notice=NOTICE) == 1
    assert len(await harness.rows(receipts)) == 2
    # the old end passes without ending the renewed access
    assert await end_expired_access(store, now=end + timedelta(hours=1)) == 0


async def test_replicas_sharing_the_work_end_each_access_once(harness: Harness) -> None:
    _, course = await limited_shop(harness, days=1, price=0)
    buyers = [f"buyer-{i}" for i in range(12)]
    for buyer in buyers:
        assert (await harness.checkout(course, user=buyer)).status_code == 201
    later = max(e["access_ends_at"] for e in await harness.rows(entitlements))
    store = expiry_store(harness)
    counts = await asyncio.gather(
        *(end_expired_access(store, now=later, batch=5) for _ in range(4))
    )
    counts += [await end_expired_access(store, now=later, batch=50)]
    assert sum(counts) == len(buyers)
    rows = await harness.rows(entitlements)
    assert {r["status"] for r in rows} == {"revoked"}
    async with harness.db.engine.connect() as conn:
        expired = await conn.scalar(
            sa.text(
                "SELECT count(*) FROM commerce.entitlement_transitions"
                " WHERE cause = 'access_expired'"
            )
        )
    assert expired == len(buyers)


async def test_an_abandoned_renewal_payment_is_ended_and_a_late_one_still_renews(
    harness: Harness,
) -> None:
    org, course = await limited_shop(harness, days=30)
    assert (await harness.checkout(course)).status_code == 201
    await pay_open_payment(harness, org)
    end = (await the_entitlement(harness))["access_ends_at"]
    assert (await harness.checkout(course)).status_code == 201
    [renewal] = await harness.rows(payment_transactions, payment_transactions.c.renewal)
    ttl = timedelta(seconds=harness.settings.checkout_ttl_seconds)
    sweeper = DriverSweeperStore(harness.db)
    # within the checkout's lifetime the renewal's payment stays open
    assert await expire_abandoned_payments(sweeper, ttl=ttl, now=renewal["created_at"] + ttl) == 0
    later = renewal["created_at"] + ttl + timedelta(seconds=1)
    assert await expire_abandoned_payments(sweeper, ttl=ttl, now=later) == 1
    assert await expire_abandoned_payments(sweeper, ttl=ttl, now=later) == 0
    [ended] = await harness.rows(payment_transactions, payment_transactions.c.renewal)
    assert ended["status"] == "expired"
    [step] = await harness.rows(payment_transitions, payment_transitions.c.to_status == "expired")
    assert (step["cause"], step["actor"]) == ("checkout_expired", "system:checkout-sweeper")
    ent = await the_entitlement(harness)
    assert (ent["status"], ent["access_ends_at"]) == ("active", end)  # the access goes on
    # the buyer paid at the last moment: the provider's completion still renews
    await press_pay(harness, renewal)
    assert (await post_webhook(harness, org, renewal)).status_code == 200
    assert (await the_entitlement(harness))["access_ends_at"] == end + timedelta(days=30)
