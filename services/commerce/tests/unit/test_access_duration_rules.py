"""Unit tests of time-limited access: when an access ends, how a checkout renews it, what a
payment's completion does to it, its end, and the notice before the end."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from coursemesh.commerce.domain.access import EndingAccess, expiry_notice
from coursemesh.commerce.domain.checkout import (
    Buyer,
    CourseFacts,
    Opening,
    Refused,
    decide_course_checkout,
)
from coursemesh.commerce.domain.entitlements import (
    Entitlement,
    IllegalTransition,
    Status,
    Transition,
    access_end,
    expire,
)
from coursemesh.commerce.domain.payments import (
    Payment,
    PaymentEvent,
    Refresh,
    entitlement_after_payment,
    late_payment,
)

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def ent(status: Status = "active", ends: datetime | None = NOW + 10 * DAY) -> Entitlement:
    return Entitlement(
        id=uuid.uuid4(),
        user_id="u",
        course_id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        status=status,
        access_revoked_at=None,
        source_payment_transaction_id=uuid.uuid4(),
        membership_id=None,
        buyer_email="u@example.com",
        version=2,
        status_changed_at=NOW - 20 * DAY,
        access_ends_at=ends,
    )


def facts(existing: Entitlement | None, price: int = 4900, days: int | None = 30) -> CourseFacts:
    return CourseFacts(
        status="published",
        organization_id=uuid.uuid4(),
        name="Strength",
        price_in_cents=price,
        currency="EUR",
        membership_id=None,
        lead_id=None,
        linked=True,
        entitlement=existing,
        access_days=days,
    )


def decide(f: CourseFacts) -> Opening | Refused:
    return decide_course_checkout(
        f,
        Buyer("u", "u@example.com"),
        course_id=uuid.uuid4(),
        now=NOW,
        new_id=uuid.uuid4(),
        new_lead_id=uuid.uuid4(),
    )


def payment(*, renewal: bool, status: str = "pending", days: int | None = 30) -> Payment:
    return Payment(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        user_id="u",
        entitlement_id=uuid.uuid4(),
        custom_course_purchase_id=None,
        amount_in_cents=4900,
        currency="EUR",
        provider="sandbox",
        provider_transaction_id="s",
        provider_payment_id=None,
        status=status,
        buyer_email=None,
        description="Strength",
        version=1,
        access_days=days,
        renewal=renewal,
    )


COMPLETED = PaymentEvent("evt", "payment.completed", "completed", amount_in_cents=4900)


def test_an_access_ends_days_after_the_later_of_now_and_its_current_end() -> None:
    assert access_end(None, NOW) is None
    assert access_end(30, NOW) == NOW + 30 * DAY
    assert access_end(30, NOW, NOW + 5 * DAY) == NOW + 35 * DAY
    assert access_end(30, NOW, NOW - 5 * DAY) == NOW + 30 * DAY


def test_a_new_free_checkout_opens_an_access_with_its_end() -> None:
    opened = decide(facts(None, price=0, days=7))
    assert isinstance(opened, Opening)
    assert (opened.kind, opened.entitlement.access_ends_at) == ("free_new", NOW + 7 * DAY)


def test_a_paid_checkout_has_no_end_until_paid_and_charges_the_duration() -> None:
    opened = decide(facts(None))
    assert isinstance(opened, Opening)
    assert opened.entitlement.access_ends_at is None
    assert opened.charge is not None
    assert (opened.charge.access_days, opened.charge.renewal) == (30, False)


def test_lifetime_access_is_owned_but_a_limited_one_is_renewed() -> None:
    assert decide(facts(ent(ends=None))) == Refused("already_owned")
    paid = decide(facts(ent()))
    assert isinstance(paid, Opening)
    assert paid.kind == "renew"
    assert paid.charge is not None
    assert paid.charge.renewal
    step = paid.transition
    assert (step.previous_status, step.cause, step.entitlement.status) == (
        "active",
        "renewal_checkout",
        "active",
    )
    assert step.entitlement.access_ends_at == NOW + 10 * DAY  # unchanged until paid
    free = decide(facts(ent(), price=0, days=5))
    assert isinstance(free, Opening)
    assert (free.transition.cause, free.entitlement.access_ends_at) == (
        "access_renewed",
        NOW + 15 * DAY,
    )


def test_a_renewal_to_a_lifetime_plan_makes_the_access_lifetime() -> None:
    free = decide(facts(ent(), price=0, days=None))
    assert isinstance(free, Opening)
    assert free.entitlement.access_ends_at is None


def test_a_renewal_completion_extends_the_access_once() -> None:
    current = ent()
    renewal = payment(renewal=True)
    assert late_payment(current, renewal, COMPLETED) is None
    step = entitlement_after_payment(current, renewal, COMPLETED, NOW)
    assert isinstance(step, Transition)
    assert step.cause == "access_renewed"
    assert step.entitlement.access_ends_at == NOW + 40 * DAY
    assert step.entitlement.source_payment_transaction_id == renewal.id
    # the same completion again: the payment is completed, the end does not move
    replay = entitlement_after_payment(step.entitlement, payment_completed(renewal), COMPLETED, NOW)
    assert replay is None


def payment_completed(p: Payment) -> Payment:
    return replace(p, status="completed")


def test_a_second_charge_that_is_not_a_renewal_is_still_late() -> None:
    current = ent()
    assert late_payment(current, payment(renewal=False), COMPLETED) == (
        "late_payment_already_active"
    )


def test_a_renewal_paid_after_the_end_opens_a_new_period_from_now() -> None:
    ended = ent(status="revoked", ends=NOW - 2 * DAY)
    step = entitlement_after_payment(ended, payment(renewal=True), COMPLETED, NOW)
    assert isinstance(step, Transition)
    assert (step.cause, step.entitlement.access_ends_at) == ("payment_completed", NOW + 30 * DAY)


def test_a_replayed_ordinary_completion_only_refreshes() -> None:
    current = ent()
    p = payment_completed(payment(renewal=False))
    assert isinstance(entitlement_after_payment(current, p, COMPLETED, NOW), Refresh)


def test_the_end_revokes_with_reason_expired_and_keeps_the_end() -> None:
    step = expire(ent(ends=NOW), NOW)
    assert (step.cause, step.reason, step.actor) == (
        "access_expired",
        "expired",
        "system:access-expiry",
    )
    assert (step.entitlement.status, step.entitlement.access_ends_at) == ("revoked", NOW)
    with pytest.raises(IllegalTransition):
        expire(ent(status="revoked"), NOW)


def test_the_notice_names_the_course_the_end_and_is_one_per_end_date() -> None:
    current = ent()
    first = expiry_notice(EndingAccess(current, "Strength", None))
    assert first.email == "u@example.com"
    assert "Strength" in first.subject
    assert "11 March 2026" in first.subject
    assert expiry_notice(EndingAccess(current, "Strength", None)).id == first.id
    moved = replace(current, access_ends_at=NOW + 20 * DAY)
    assert expiry_notice(EndingAccess(moved, "Strength", None)).id != first.id
