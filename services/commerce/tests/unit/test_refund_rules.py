"""The refund rule, pure: inside the window sold, once per payment."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from coursemesh.commerce.domain.entitlements import Entitlement
from coursemesh.commerce.domain.refunds import (
    NothingToRefund,
    PaidAccess,
    RefundsNotOffered,
    RefundWindowClosed,
    decide_refund,
    window_closes_at,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
ACTIVE = Entitlement(
    id=uuid.uuid4(),
    user_id="user_buyer",
    course_id=uuid.uuid4(),
    organization_id=uuid.uuid4(),
    status="active",
    access_revoked_at=None,
    source_payment_transaction_id=uuid.uuid4(),
    membership_id=None,
    buyer_email=None,
    version=2,
    status_changed_at=NOW,
)
PAID = PaidAccess(
    status="completed",
    completed_at=NOW - timedelta(days=3),
    refund_window_days=14,
    refund_requested_at=None,
)


def test_inside_the_window_the_refund_is_made_once() -> None:
    assert decide_refund(ACTIVE, PAID, NOW) == "refund"
    asked = replace(PAID, refund_requested_at=NOW)
    assert decide_refund(ACTIVE, asked, NOW) == "already_requested"
    assert window_closes_at(PAID) == NOW + timedelta(days=11)


def test_the_window_closes_on_its_last_instant() -> None:
    closes = NOW - timedelta(days=3) + timedelta(days=14)
    assert decide_refund(ACTIVE, PAID, closes - timedelta(seconds=1)) == "refund"
    with pytest.raises(RefundWindowClosed):
        decide_refund(ACTIVE, PAID, closes)


def test_no_window_or_nothing_paid_refuses() -> None:
    with pytest.raises(RefundsNotOffered):
        decide_refund(ACTIVE, replace(PAID, refund_window_days=None), NOW)
    with pytest.raises(NothingToRefund):
        decide_refund(ACTIVE, None, NOW)  # free, or a coupon took everything off
    with pytest.raises(NothingToRefund):
        decide_refund(replace(ACTIVE, status="pending"), PAID, NOW)
    with pytest.raises(NothingToRefund):
        decide_refund(ACTIVE, replace(PAID, status="refunded", completed_at=None), NOW)
