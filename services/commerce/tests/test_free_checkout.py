"""The free checkout's fast store (one read, one write statement with its outbox rows): the
rows and events it writes, the rows the transactional store reopens, and the checkout that
loses a race between its read and its write."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from commerce_support import BUYER, TRAINER, Harness

from coursemesh.chassis.testing import outbox_events
from coursemesh.commerce.adapters import checkout_sql
from coursemesh.commerce.adapters.checkout_sql import FastCheckoutWrite
from coursemesh.commerce.adapters.tables import (
    entitlement_transitions,
    entitlements,
    leads,
    organization_leads,
)
from coursemesh.commerce.app.ports import Saved
from coursemesh.commerce.bootstrap import build_runtime
from coursemesh.commerce.domain.checkout import Buyer, Opening
from coursemesh.commerce.domain.entitlements import CourseAlreadyOwned

LEAD_CREATED = "commerce.lead.created.v1"
ENTITLEMENT_CHANGED = "commerce.entitlement.changed.v1"
EMAIL = f"{BUYER}@example.com"


async def _checkout_events(harness: Harness) -> list[str]:
    """The types of the outbox events a checkout writes, in order (the price's are left out)."""
    checkout_types = (LEAD_CREATED, ENTITLEMENT_CHANGED)
    return [e.type for e in await outbox_events(harness.db) if e.type in checkout_types]


async def _free_course(harness: Harness, org: uuid.UUID, name: str) -> uuid.UUID:
    course = await harness.catalog.course(org, name)
    r = await harness.client.patch(
        f"/organizations/{org}/courses/{course}/price",
        json={"priceInCents": 0},
        headers=harness.auth(TRAINER),
    )
    assert r.status_code == 200, r.text
    return course


async def test_a_new_buyer_outside_the_seller_gets_every_row_and_both_events(
    harness: Harness,
) -> None:
    org, course = await harness.shop(price=0)
    r = await harness.checkout(course)
    assert r.status_code == 201, r.text
    assert r.json()["paymentPageUrl"] is None

    [ent] = await harness.rows(entitlements)
    assert str(ent["id"]) == r.json()["entitlementId"]
    assert {k: ent[k] for k in ("user_id", "course_id", "organization_id", "status")} == {
        "user_id": BUYER,
        "course_id": course,
        "organization_id": org,
        "status": "active",
    }
    assert (ent["version"], ent["membership_id"], ent["buyer_email"]) == (1, None, EMAIL)
    assert (ent["access_revoked_at"], ent["source_payment_transaction_id"]) == (None, None)
    [audit] = await harness.rows(entitlement_transitions)
    assert (audit["entitlement_id"], audit["from_status"], audit["to_status"]) == (
        ent["id"],
        None,
        "active",
    )
    assert (audit["cause"], audit["actor"], audit["reason"]) == (
        "free_checkout",
        f"user:{BUYER}",
        None,
    )
    assert audit["at"] == ent["status_changed_at"]
    [lead] = await harness.rows(leads)
    assert (lead["user_id"], lead["email"], lead["source"]) == (BUYER, EMAIL, "course_purchase")
    [link] = await harness.rows(organization_leads)
    assert (link["organization_id"], link["lead_id"], link["membership_id"], link["source"]) == (
        org,
        lead["id"],
        None,
        "course_purchase",
    )

    # The outbox: lead.created, then entitlement.changed, as the transactional store writes them.
    assert await _checkout_events(harness) == [LEAD_CREATED, ENTITLEMENT_CHANGED]
    [created] = await outbox_events(harness.db, LEAD_CREATED)
    assert (created.aggregate_id, created.aggregate_version) == (str(lead["id"]), 1)
    p = created.payload
    assert (p.lead_id, p.organization_id, p.user_id, p.email, p.source) == (
        lead["id"],
        org,
        BUYER,
        EMAIL,
        "course_purchase",
    )
    [changed] = await outbox_events(harness.db, ENTITLEMENT_CHANGED)
    assert (changed.aggregate_id, changed.aggregate_version) == (str(ent["id"]), 1)
    q = changed.payload
    assert (q.entitlement_id, q.user_id, q.course_id, q.organization_id) == (
        ent["id"],
        BUYER,
        course,
        org,
    )
    assert (q.status, q.previous_status, q.cause, q.membership_id) == (
        "active",
        None,
        "free_checkout",
        None,
    )
    assert q.changed_at == ent["status_changed_at"]


async def test_a_known_lead_is_linked_to_a_second_seller_with_its_own_id(
    harness: Harness,
) -> None:
    _, first = await harness.shop(price=0)
    assert (await harness.checkout(first)).status_code == 201
    other = await harness.catalog.organization("Other Studio")
    await harness.catalog.member(other, TRAINER)
    second = await _free_course(harness, other, "Other course")
    assert (await harness.checkout(second)).status_code == 201

    [lead] = await harness.rows(leads)  # one lead per buyer
    links = await harness.rows(organization_leads, organization_leads.c.organization_id == other)
    assert [(x["lead_id"], x["membership_id"]) for x in links] == [(lead["id"], None)]
    announced = await outbox_events(harness.db, LEAD_CREATED)
    assert [(e.payload.lead_id, e.payload.organization_id) for e in announced][1] == (
        lead["id"],
        other,
    )
    assert await harness.count(entitlements) == 2


async def test_a_member_of_the_seller_gets_an_entitlement_that_carries_the_membership_and_no_lead(
    harness: Harness,
) -> None:
    org, course = await harness.shop(price=0)
    membership = await harness.catalog.member(org, BUYER, role="member")
    assert (await harness.checkout(course)).status_code == 201
    [ent] = await harness.rows(entitlements)
    assert (ent["status"], ent["membership_id"]) == ("active", membership)
    assert await harness.count(leads) == 0
    assert await harness.count(organization_leads) == 0
    assert await _checkout_events(harness) == [ENTITLEMENT_CHANGED]
    [changed] = await outbox_events(harness.db, ENTITLEMENT_CHANGED)
    assert changed.payload.membership_id == membership


@pytest.mark.parametrize("ended", ["pending", "revoked"])
async def test_a_pending_or_revoked_row_is_reopened_active_by_the_transactional_store(
    harness: Harness, ended: str
) -> None:
    org, course = await harness.shop(price=4900)
    first = (await harness.checkout(course)).json()
    if ended == "revoked":
        r = await harness.client.post(
            f"/organizations/{org}/entitlements/{first['entitlementId']}/revoke",
            json={"reason": "test"},
            headers=harness.auth(TRAINER),
        )
        assert r.status_code == 200, r.text
    await harness.client.patch(
        f"/organizations/{org}/courses/{course}/price",
        json={"priceInCents": 0},
        headers=harness.auth(TRAINER),
    )
    again = await harness.checkout(course)
    assert again.status_code == 201, again.text
    assert again.json()["paymentPageUrl"] is None
    assert again.json()["entitlementId"] == first["entitlementId"]
    [ent] = await harness.rows(entitlements)
    assert ent["status"] == "active"
    assert ent["access_revoked_at"] is None
    transitions = await harness.rows(entitlement_transitions)
    assert [(t["from_status"], t["to_status"], t["cause"]) for t in transitions][-1] == (
        ended,
        "active",
        "free_checkout",
    )
    assert (await outbox_events(harness.db, ENTITLEMENT_CHANGED))[-1].aggregate_version == ent[
        "version"
    ]


async def test_free_checkout_with_an_idempotency_key_replays_its_first_answer(
    harness: Harness,
) -> None:
    _, course = await harness.shop(price=0)
    first = await harness.checkout(course, **{"Idempotency-Key": "free-1"})
    again = await harness.checkout(course, **{"Idempotency-Key": "free-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert first.json()["paymentPageUrl"] is None
    assert await harness.count(entitlements) == 1
    assert await harness.count(entitlement_transitions) == 1
    r = await harness.checkout(course)  # without the key: a new request, already owned
    assert (r.status_code, r.json()["code"]) == (409, "COURSE_ALREADY_OWNED")


@pytest.mark.parametrize("member", [False, True])
async def test_a_checkout_that_loses_a_race_after_its_read_writes_nothing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, member: bool
) -> None:
    """Between this checkout's read and its write, another checkout of the same buyer writes
    the rows it read as missing: its statement is undone whole, and the transactional store
    answers through the same decision (here: already owned)."""
    org, course = await harness.shop(price=0)
    if member:
        await harness.catalog.member(org, BUYER, role="member")
    buyer = Buyer(BUYER, EMAIL)
    checkout = build_runtime(harness.settings, harness.db).checkout
    read = checkout_sql.read_facts
    save = FastCheckoutWrite.save
    winners: list[uuid.UUID | None] = []
    fast_saves: list[Saved] = []

    async def read_then_lose(conn: Any, course_id: uuid.UUID, user_id: str) -> Any:
        facts = await read(conn, course_id, user_id)
        if not winners:
            winners.append(None)  # the concurrent checkout reads for itself
            winners[0] = (await checkout.course(course_id, buyer, None)).entitlement_id
        return facts

    async def recorded_save(self: FastCheckoutWrite, opening: Opening, now: Any) -> Saved:
        saved = await save(self, opening, now)
        fast_saves.append(saved)
        return saved

    monkeypatch.setattr(checkout_sql, "read_facts", read_then_lose)
    monkeypatch.setattr(FastCheckoutWrite, "save", recorded_save)
    with pytest.raises(CourseAlreadyOwned):
        await checkout.course(course, buyer, None)
    assert fast_saves == ["saved", "lost"]  # the winner's, then this one's: nothing written
    [ent] = await harness.rows(entitlements)
    assert ent["id"] == winners[0]
    assert await harness.count(entitlement_transitions) == 1
    assert await harness.count(leads) == await harness.count(organization_leads) == int(not member)
    assert [e.aggregate_id for e in await outbox_events(harness.db, ENTITLEMENT_CHANGED)] == [
        str(ent["id"])
    ]
    assert len(await outbox_events(harness.db, LEAD_CREATED)) == int(not member)
