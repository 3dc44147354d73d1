"""The access history through the real app on PostgreSQL: every step the checkout, the
provider's webhooks, staff and the sweeper write, read back by staff and by the buyer, with
who took it and the payment it is about; refusals; paging; hostile path parameters."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from commerce_support import BUYER, TRAINER, Harness
from test_webhooks import paid_checkout, post_webhook, press_pay

from coursemesh.commerce.adapters.sweeper_sql import DriverSweeperStore
from coursemesh.commerce.adapters.tables import entitlement_transitions, entitlements
from coursemesh.commerce.app.sweeper import expire_abandoned_checkouts

OTHER_BUYER = "user_other_buyer"


def staff_url(org: uuid.UUID, ent_id: object) -> str:
    return f"/organizations/{org}/entitlements/{ent_id}/history"


def my_url(course_id: object) -> str:
    return f"/me/courses/{course_id}/history"


async def read(h: Harness, url: str, user: str, status: int = 200) -> Any:
    r = await h.client.get(url, headers=h.auth(user))
    assert r.status_code == status, r.text
    return r.json()


def steps(page: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (e["fromStatus"], e["toStatus"], e["cause"], e["actor"], e["actorType"], e["reason"])
        for e in page["items"]
    ]


async def the_entitlement(h: Harness) -> dict[str, Any]:
    [ent] = await h.rows(entitlements)
    return ent


async def test_paid_checkout_completed_then_refunded_shows_each_step_with_its_payment(
    harness: Harness,
) -> None:
    org, txn = await paid_checkout(harness)
    await press_pay(harness, txn)
    assert (await post_webhook(harness, org, txn)).json()["status"] == "applied"
    refunded = await post_webhook(harness, org, txn, "payment.refunded")
    assert refunded.json()["status"] == "applied"
    ent = await the_entitlement(harness)

    page = await read(harness, staff_url(org, ent["id"]), TRAINER)
    assert (page["total"], page["limit"], page["offset"]) == (3, 50, 0)
    assert steps(page) == [
        (None, "pending", "paid_checkout", f"user:{BUYER}", "buyer", None),
        ("pending", "active", "payment_completed", "provider-webhook", "provider-webhook", None),
        ("active", "revoked", "payment_refunded", "provider-webhook", "provider-webhook", None),
    ]
    assert [e["paymentId"] for e in page["items"]] == [str(txn["id"])] * 3
    # the payment as it stands now, for support staff
    assert page["items"][0]["payment"] == {
        "status": "refunded",
        "amountInCents": 4900,
        "currency": "USD",
    }
    times = [datetime.fromisoformat(e["at"]) for e in page["items"]]
    assert times == sorted(times)

    mine = await read(harness, my_url(ent["course_id"]), BUYER)
    assert mine == page  # nothing a staff member did: the buyer sees the same


async def test_a_staff_revoke_names_the_staff_member_to_staff_only(harness: Harness) -> None:
    org, txn = await paid_checkout(harness)
    await press_pay(harness, txn)
    await post_webhook(harness, org, txn)
    ent = await the_entitlement(harness)
    r = await harness.client.post(
        f"/organizations/{org}/entitlements/{ent['id']}/revoke",
        json={"reason": "chargeback"},
        headers=harness.auth(TRAINER),
    )
    assert r.status_code == 200, r.text

    page = await read(harness, staff_url(org, ent["id"]), TRAINER)
    assert [e["actorType"] for e in page["items"]] == ["buyer", "provider-webhook", "staff"]
    revoked = page["items"][-1]
    assert (revoked["actor"], revoked["reason"], revoked["paymentId"], revoked["payment"]) == (
        f"user:{TRAINER}",
        "chargeback",
        None,
        None,
    )
    mine = await read(harness, my_url(ent["course_id"]), BUYER)
    revoked_for_buyer = mine["items"][-1]
    assert (revoked_for_buyer["actor"], revoked_for_buyer["actorType"]) == (None, "staff")
    assert revoked_for_buyer["reason"] == "chargeback"
    assert TRAINER not in json.dumps(mine)
    # the column behind paymentId is written, not derived at read time
    rows = await harness.rows(
        entitlement_transitions, entitlement_transitions.c.entitlement_id == ent["id"]
    )
    assert sorted((r["cause"], r["payment_transaction_id"]) for r in rows) == [
        ("paid_checkout", txn["id"]),
        ("payment_completed", txn["id"]),
        ("staff_revoked", None),
    ]


async def test_a_free_checkout_is_one_step_of_the_buyer_without_a_payment(
    harness: Harness,
) -> None:
    org, course = await harness.shop(price=0)
    r = await harness.checkout(course)
    assert r.status_code == 201, r.text
    mine = await read(harness, my_url(course), BUYER)
    assert steps(mine) == [(None, "active", "free_checkout", f"user:{BUYER}", "buyer", None)]
    assert (mine["items"][0]["paymentId"], mine["items"][0]["payment"]) == (None, None)
    staff = await read(harness, staff_url(org, r.json()["entitlementId"]), TRAINER)
    assert staff == mine


async def test_the_sweeper_expiry_is_a_system_step_naming_the_open_payment(
    harness: Harness,
) -> None:
    org, txn = await paid_checkout(harness)
    ttl = timedelta(hours=24)
    later = datetime.now(UTC) + ttl + timedelta(seconds=1)
    assert await expire_abandoned_checkouts(DriverSweeperStore(harness.db), ttl=ttl, now=later) == 1
    ent = await the_entitlement(harness)
    page = await read(harness, staff_url(org, ent["id"]), TRAINER)
    expired = page["items"][-1]
    assert (expired["cause"], expired["actor"], expired["actorType"], expired["reason"]) == (
        "checkout_expired",
        "system:checkout-sweeper",
        "system",
        "checkout_expired",
    )
    assert (expired["paymentId"], expired["payment"]["status"]) == (str(txn["id"]), "pending")


async def test_rows_written_before_the_payment_column_read_as_people_without_a_payment(
    harness: Harness,
) -> None:
    """An audit row of the previous release: a buyer's bare user id, no payment."""
    org, course = await harness.shop(price=0)
    ent_id = (await harness.checkout(course)).json()["entitlementId"]
    async with harness.db.engine.begin() as conn:
        await conn.execute(
            entitlement_transitions.update()
            .where(entitlement_transitions.c.entitlement_id == uuid.UUID(ent_id))
            .values(actor=BUYER)
        )
    page = await read(harness, staff_url(org, ent_id), TRAINER)
    assert steps(page) == [(None, "active", "free_checkout", f"user:{BUYER}", "buyer", None)]


async def test_pages_are_oldest_first_within_bounds(harness: Harness) -> None:
    org, txn = await paid_checkout(harness)
    await press_pay(harness, txn)
    await post_webhook(harness, org, txn)
    await post_webhook(harness, org, txn, "payment.refunded")
    ent = await the_entitlement(harness)
    url = staff_url(org, ent["id"])
    everything = await read(harness, url, TRAINER)
    middle = await read(harness, f"{url}?limit=1&offset=1", TRAINER)
    assert (middle["total"], middle["limit"], middle["offset"]) == (3, 1, 1)
    assert middle["items"] == everything["items"][1:2]
    beyond = await read(harness, f"{my_url(ent['course_id'])}?offset=50", BUYER)
    assert (beyond["items"], beyond["total"]) == ([], 3)
    for query in ("limit=0", "limit=101", "offset=-1", "offset=1000000001", "limit=x"):
        for target, user in ((url, TRAINER), (my_url(ent["course_id"]), BUYER)):
            refused = await read(harness, f"{target}?{query}", user, 400)
            assert refused["code"] == "VALIDATION_FAILED", (target, query)


async def test_refusals_tell_nobody_whose_entitlement_exists(harness: Harness) -> None:
    org, _txn = await paid_checkout(harness)
    ent = await the_entitlement(harness)
    course = ent["course_id"]
    # not staff of the organization (the buyer included): the neighbours' 404
    assert (await read(harness, staff_url(org, ent["id"]), BUYER, 404))["code"] == "NOT_FOUND"
    # staff of another organization: under its path, and under their own
    other = await harness.catalog.organization("Other Gym")
    await harness.catalog.member(other, "user_other_trainer")
    foreign = await read(harness, staff_url(org, ent["id"]), "user_other_trainer", 404)
    assert foreign["code"] == "NOT_FOUND"
    own_path = await read(harness, staff_url(other, ent["id"]), "user_other_trainer", 404)
    assert own_path["code"] == "ENTITLEMENT_NOT_FOUND"
    unknown = await read(harness, staff_url(org, uuid.uuid4()), TRAINER, 404)
    assert unknown["code"] == "ENTITLEMENT_NOT_FOUND"
    # another buyer asking about this buyer's course, and a course nobody bought
    for user, course_id in ((OTHER_BUYER, course), (BUYER, uuid.uuid4())):
        refused = await harness.client.get(my_url(course_id), headers=harness.auth(user))
        assert refused.status_code == 404
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "ENTITLEMENT_NOT_FOUND"
    # no token at all
    for url in (staff_url(org, ent["id"]), my_url(course)):
        missing = await harness.client.get(url)
        assert (missing.status_code, missing.json()["code"]) == (401, "MISSING_TOKEN")


@pytest.mark.parametrize(
    "bad",
    ["not-a-uuid", "1", "%00", "' OR 1=1 --", "0195" * 20, "%E2%80%AE", ".."],
    ids=["word", "number", "nul", "sql", "long", "bidi", "dots"],
)
async def test_hostile_path_parameters_are_refused_without_a_5xx(
    harness: Harness, bad: str
) -> None:
    org, course = await harness.shop(price=0)
    await harness.checkout(course)
    ent = await the_entitlement(harness)
    urls = [
        (f"/organizations/{bad}/entitlements/{ent['id']}/history", TRAINER),
        (f"/organizations/{org}/entitlements/{bad}/history", TRAINER),
        (f"/me/courses/{bad}/history", BUYER),
    ]
    before = await harness.snapshot()
    for url, user in urls:
        r = await harness.client.get(url, headers=harness.auth(user))
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text)
    assert await harness.snapshot() == before
