"""A buyer's refund request: approved when the payment that activated their entitlement
completed less than its plan's refund window ago (the window in force when they bought).
Pure: the use case loads the entitlement and its payment and carries the decision out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from coursemesh.chassis.errors import Conflict
from coursemesh.commerce.domain.entitlements import Entitlement


class NothingToRefund(Conflict):
    """No completed payment of the buyer's gives them this course (free, pending, revoked)."""

    code = "NOTHING_TO_REFUND"


class RefundsNotOffered(Conflict):
    code = "REFUNDS_NOT_OFFERED"


class RefundWindowClosed(Conflict):
    code = "REFUND_WINDOW_CLOSED"


@dataclass(frozen=True, slots=True)
class PaidAccess:
    """The payment behind an active entitlement, as far as a refund is concerned."""

    status: str
    completed_at: datetime | None
    refund_window_days: int | None
    refund_requested_at: datetime | None


RefundDecision = Literal["refund", "already_requested"]


def decide_refund(
    entitlement: Entitlement | None, payment: PaidAccess | None, now: datetime
) -> RefundDecision:
    """``refund`` inside the window; ``already_requested`` for a request made before (the
    provider's answer is on its way); a refusal otherwise."""
    if entitlement is None or entitlement.status != "active" or payment is None:
        raise NothingToRefund("You hold no paid access to this course to refund")
    if payment.refund_requested_at is not None:
        return "already_requested"
    if payment.status != "completed" or payment.completed_at is None:
        raise NothingToRefund("The payment for this course is not completed")
    if payment.refund_window_days is None:
        raise RefundsNotOffered("This course was not sold with a refund window")
    closes = payment.completed_at + timedelta(days=payment.refund_window_days)
    if now >= closes:
        raise RefundWindowClosed(f"The refund window closed at {closes.isoformat()}")
    return "refund"


def window_closes_at(payment: PaidAccess) -> datetime | None:
    if payment.completed_at is None or payment.refund_window_days is None:
        return None
    return payment.completed_at + timedelta(days=payment.refund_window_days)
