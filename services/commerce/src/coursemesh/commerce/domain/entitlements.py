"""The entitlement state machine (``course_entitlements.status``): checkout, payment outcomes,
refund, dispute, checkout expiry and staff revoke (the last four all end in ``revoked``).

Pure: no I/O. An illegal transition raises ``IllegalTransition`` (409 if it reaches a client).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from coursemesh.chassis.errors import Conflict

Status = Literal["pending", "active", "revoked"]
Cause = Literal[
    "free_checkout",
    "paid_checkout",
    "payment_completed",
    "payment_failed",
    "payment_refunded",
    "payment_disputed",
    "checkout_expired",
    "staff_revoked",
    "staff_granted",
    "gift_claimed",
]

# (from, cause) -> to. ``None`` as "from" is a row that does not exist yet.
TRANSITIONS: dict[tuple[Status | None, Cause], Status] = {
    (None, "free_checkout"): "active",
    (None, "paid_checkout"): "pending",
    # A checkout of a pending or revoked row reopens it with the checkout's initial status.
    ("pending", "free_checkout"): "active",
    ("pending", "paid_checkout"): "pending",
    ("revoked", "free_checkout"): "active",
    ("revoked", "paid_checkout"): "pending",
    ("pending", "payment_completed"): "active",
    # A payment that completes after its checkout expired still buys the course.
    ("revoked", "payment_completed"): "active",
    ("pending", "payment_failed"): "revoked",
    ("pending", "checkout_expired"): "revoked",
    ("pending", "staff_revoked"): "revoked",
    ("active", "payment_refunded"): "revoked",
    ("active", "payment_disputed"): "revoked",
    ("active", "staff_revoked"): "revoked",
    # A staff grant (comp access, no payment) opens a new or revoked row; a pending row has a
    # payment open, which its buyer may still complete: revoke it first.
    (None, "staff_granted"): "active",
    ("revoked", "staff_granted"): "active",
    # A gift's recipient claims it: a new or revoked row of theirs, its source the gift's
    # payment (so a refund of that payment revokes it); a pending row's checkout must end first.
    (None, "gift_claimed"): "active",
    ("revoked", "gift_claimed"): "active",
}


class IllegalTransition(Conflict):
    code = "ILLEGAL_ENTITLEMENT_TRANSITION"


class CourseAlreadyOwned(Conflict):
    code = "COURSE_ALREADY_OWNED"


@dataclass(frozen=True)
class Entitlement:
    id: uuid.UUID
    user_id: str
    course_id: uuid.UUID
    organization_id: uuid.UUID
    status: Status
    access_revoked_at: datetime | None
    source_payment_transaction_id: uuid.UUID | None
    membership_id: uuid.UUID | None
    buyer_email: str | None
    version: int
    status_changed_at: datetime


@dataclass(frozen=True)
class Transition:
    """One audited step of an entitlement: what it was, what it became, and why."""

    entitlement: Entitlement
    previous_status: Status | None
    cause: Cause
    actor: str
    reason: str | None
    at: datetime
    #: the payment that caused the step or that it opened (a paid checkout, a provider's
    #: outcome, the expiry of a checkout whose payment is known); None: no payment involved
    payment_transaction_id: uuid.UUID | None = None


def user_actor(user_id: str) -> str:
    """How a person (the buyer, a staff member) is recorded as a transition's actor."""
    return f"user:{user_id}"


def next_status(current: Status | None, cause: Cause) -> Status:
    try:
        return TRANSITIONS[(current, cause)]
    except KeyError:
        raise IllegalTransition(
            f"An entitlement cannot go from {current or 'new'} by {cause}"
        ) from None


def _opened(
    existing: Entitlement | None,
    cause: Cause,
    *,
    new_id: uuid.UUID,
    user_id: str,
    course_id: uuid.UUID,
    organization_id: uuid.UUID,
    membership_id: uuid.UUID | None,
    buyer_email: str | None,
    actor: str,
    reason: str | None,
    now: datetime,
) -> Transition:
    """``existing`` (or a new row) moved by ``cause`` to its opening status, with no payment as
    its source yet (the callers refuse an active row first)."""
    previous = existing.status if existing else None
    status = next_status(previous, cause)
    if existing is None:
        ent = Entitlement(
            id=new_id,
            user_id=user_id,
            course_id=course_id,
            organization_id=organization_id,
            status=status,
            access_revoked_at=None,
            source_payment_transaction_id=None,
            membership_id=membership_id,
            buyer_email=buyer_email,
            version=1,
            status_changed_at=now,
        )
    else:
        ent = replace(
            existing,
            status=status,
            access_revoked_at=None,
            source_payment_transaction_id=None,
            membership_id=membership_id,
            buyer_email=buyer_email or existing.buyer_email,
            version=existing.version + 1,
            status_changed_at=now,
        )
    return Transition(ent, previous, cause, actor, reason, now)


def open_for_checkout(
    existing: Entitlement | None,
    *,
    new_id: uuid.UUID,
    user_id: str,
    course_id: uuid.UUID,
    organization_id: uuid.UUID,
    membership_id: uuid.UUID | None,
    buyer_email: str | None,
    free: bool,
    now: datetime,
) -> Transition:
    """A checkout's transition: active -> COURSE_ALREADY_OWNED; pending or
    revoked -> the same row with the new initial status; none -> a new row."""
    if existing is not None and existing.status == "active":
        raise CourseAlreadyOwned("You already own this course")
    return _opened(
        existing,
        "free_checkout" if free else "paid_checkout",
        new_id=new_id,
        user_id=user_id,
        course_id=course_id,
        organization_id=organization_id,
        membership_id=membership_id,
        buyer_email=buyer_email,
        actor=user_actor(user_id),
        reason=None,
        now=now,
    )


def grant(
    existing: Entitlement | None,
    *,
    new_id: uuid.UUID,
    user_id: str,
    course_id: uuid.UUID,
    organization_id: uuid.UUID,
    membership_id: uuid.UUID | None,
    staff_id: str,
    reason: str,
    now: datetime,
) -> Transition:
    """A staff grant: a new active row, or the revoked row active again (no payment is its
    source); an active row is already owned, a pending one cannot be granted."""
    if existing is not None and existing.status == "active":
        raise CourseAlreadyOwned("This user already has access to this course")
    return _opened(
        existing,
        "staff_granted",
        new_id=new_id,
        user_id=user_id,
        course_id=course_id,
        organization_id=organization_id,
        membership_id=membership_id,
        buyer_email=None,
        actor=user_actor(staff_id),
        reason=reason,
        now=now,
    )


def transition(
    ent: Entitlement,
    cause: Cause,
    *,
    actor: str,
    now: datetime,
    reason: str | None = None,
    transaction_id: uuid.UUID | None = None,
) -> Transition:
    """Apply a payment outcome, expiry or revoke to an existing entitlement; ``transaction_id``
    is the payment the step is about (it becomes the entitlement's source payment only on a
    completion)."""
    status = next_status(ent.status, cause)
    changed = replace(
        ent,
        status=status,
        access_revoked_at=now if status == "revoked" else None,
        source_payment_transaction_id=(
            transaction_id if cause == "payment_completed" else ent.source_payment_transaction_id
        ),
        version=ent.version + 1,
        status_changed_at=now,
    )
    return Transition(changed, ent.status, cause, actor, reason, now, transaction_id)


def refresh_payment_link(ent: Entitlement, transaction_id: uuid.UUID) -> Entitlement | None:
    """A replayed completion on an active row changes no status; it only refreshes the
    transaction link in case the first delivery missed it. None when nothing changes."""
    if ent.status != "active" or ent.source_payment_transaction_id == transaction_id:
        return None
    return replace(
        ent,
        source_payment_transaction_id=transaction_id,
        access_revoked_at=None,
        version=ent.version + 1,
    )


def claim_gift(
    existing: Entitlement | None,
    *,
    new_id: uuid.UUID,
    user_id: str,
    course_id: uuid.UUID,
    organization_id: uuid.UUID,
    membership_id: uuid.UUID | None,
    gift_id: uuid.UUID,
    payment_id: uuid.UUID,
    now: datetime,
) -> Transition:
    """A gift claimed by ``user_id``: their new or revoked row active, the gift's payment its
    source and the step's payment; the actor is the claimer, the reason names the gift."""
    if existing is not None and existing.status == "active":
        raise CourseAlreadyOwned("You already own this course")
    t = _opened(
        existing,
        "gift_claimed",
        new_id=new_id,
        user_id=user_id,
        course_id=course_id,
        organization_id=organization_id,
        membership_id=membership_id,
        buyer_email=None,
        actor=user_actor(user_id),
        reason=f"gift {gift_id}",
        now=now,
    )
    ent = replace(t.entitlement, source_payment_transaction_id=payment_id)
    return replace(t, entitlement=ent, payment_transaction_id=payment_id)
