"""The checkout decision, a pure function of the facts."""

from __future__ import annotations

import uuid
from dataclasses import replace

from commerce_fakes import NOW

from coursemesh.commerce.domain.checkout import (
    ALREADY_OWNED,
    NO_ACTIVE_PLAN,
    UNAVAILABLE,
    Buyer,
    CourseFacts,
    Opening,
    decide_course_checkout,
)
from coursemesh.commerce.domain.entitlements import Entitlement

BUYER = Buyer("user_buyer", "buyer@example.com")
COURSE = uuid.uuid4()
ORG = uuid.uuid4()
NEW_ID, NEW_LEAD = uuid.uuid4(), uuid.uuid4()
FACTS = CourseFacts(
    status="published",
    organization_id=ORG,
    name="30-day reset",
    price_in_cents=0,
    currency="USD",
    membership_id=None,
    lead_id=None,
    linked=False,
    entitlement=None,
)


def decide(facts: CourseFacts | None) -> object:
    return decide_course_checkout(
        facts, BUYER, course_id=COURSE, now=NOW, new_id=NEW_ID, new_lead_id=NEW_LEAD
    )


def entitlement(status: str) -> Entitlement:
    return Entitlement(
        id=uuid.uuid4(),
        user_id=BUYER.user_id,
        course_id=COURSE,
        organization_id=ORG,
        status=status,  # type: ignore[arg-type]
        access_revoked_at=None,
        source_payment_transaction_id=None,
        membership_id=None,
        buyer_email=None,
        version=2,
        status_changed_at=NOW,
    )


def test_refusals_unavailable_no_plan_owned() -> None:
    assert decide(None) is UNAVAILABLE
    assert decide(replace(FACTS, status="draft")) is UNAVAILABLE
    assert decide(replace(FACTS, price_in_cents=None)) is NO_ACTIVE_PLAN
    assert decide(replace(FACTS, entitlement=entitlement("active"))) is ALREADY_OWNED
    assert UNAVAILABLE.error().code == "COURSE_NOT_FOUND"
    assert NO_ACTIVE_PLAN.error().code == "NO_ACTIVE_PLAN"
    assert (ALREADY_OWNED.error().status, ALREADY_OWNED.error().code) == (
        409,
        "COURSE_ALREADY_OWNED",
    )


def test_free_new_for_a_buyer_outside_the_seller_links_a_new_lead() -> None:
    d = decide(FACTS)
    assert isinstance(d, Opening)
    assert (d.kind, d.charge, d.entitlement.id, d.entitlement.status) == (
        "free_new",
        None,
        NEW_ID,
        "active",
    )
    assert d.lead is not None
    assert (d.lead.lead_id, d.lead.new, d.lead.source, d.lead.email) == (
        NEW_LEAD,
        True,
        "course_purchase",
        BUYER.email,
    )


def test_a_known_lead_is_reused_and_a_linked_one_or_a_member_adds_nothing() -> None:
    known = uuid.uuid4()
    d = decide(replace(FACTS, lead_id=known))
    assert isinstance(d, Opening)
    assert d.lead is not None
    assert (d.lead.lead_id, d.lead.new) == (known, False)
    d = decide(replace(FACTS, lead_id=known, linked=True))
    assert isinstance(d, Opening)
    assert d.lead is None
    membership = uuid.uuid4()
    d = decide(replace(FACTS, membership_id=membership))
    assert isinstance(d, Opening)
    assert d.lead is None
    assert d.entitlement.membership_id == membership


def test_paid_new_charges_the_plan() -> None:
    d = decide(replace(FACTS, price_in_cents=4900, currency="EUR"))
    assert isinstance(d, Opening)
    assert (d.kind, d.entitlement.status) == ("paid_new", "pending")
    assert d.charge is not None
    assert (d.charge.amount_in_cents, d.charge.currency, d.charge.description) == (
        4900,
        "EUR",
        "30-day reset",
    )
    d = decide(replace(FACTS, price_in_cents=4900, name=None))
    assert isinstance(d, Opening)
    assert d.charge is not None
    assert d.charge.description == "Course"


def test_a_pending_or_revoked_row_is_reopened() -> None:
    for status in ("pending", "revoked"):
        old = entitlement(status)
        d = decide(replace(FACTS, entitlement=old))
        assert isinstance(d, Opening)
        assert (d.kind, d.entitlement.id, d.entitlement.version) == ("reopen", old.id, 3)
        assert (d.transition.previous_status, d.entitlement.status) == (status, "active")
