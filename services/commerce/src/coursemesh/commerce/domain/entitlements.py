"""The entitlement state machine (``course_entitlements.status``): checkout, payment outcomes,
refund, dispute, checkout expiry, staff revoke and the end of a time-limited access (the last
five all end in ``revoked``); renewal of a time-limited access (active stays active, its end
moves).

Pure: no I/O. An illegal transition raises ``IllegalTransition`` (409 if it reaches a client).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
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
    "renewal_checkout",
    "access_renewed",
    "access_expired",
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
    # A time-limited access: a paid checkout of it while it lasts opens a payment (the access
    # goes on meanwhile), a free one or that payment's completion moves its end; at the end
    # the access is revoked.
    ("active", "renewal_checkout"): "active",
    ("active", "access_renewed"): "active",
    ("active", "access_expired"): "revoked",
    # A gift's recipient claims it: a new or revoked row of theirs, its source the gift's
    # payment (so a refund of that payment revokes it); a pending row's checkout must end first.
    (None, "gift_claimed"): "active",
    ("revoked", "gift_claimed"): "active",
}

#: The reason recorded when a time-limited access ends.
EXPIRED = "expired"
#: The actor of the transitions that end time-limited access.
ACCESS_EXPIRY_ACTOR = "system:access-expiry"


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
    #: when an active access ends (None: lifetime); kept on a revoked row as it was
    access_ends_at: datetime | None = None


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


def access_end(
    access_days: int | None, now: datetime, current_end: datetime | None = None
) -> datetime | None:
    """When access bought for ``access_days`` (None: lifetime) ends: that many days from the
    later of now and the end of the access still held (``current_end``)."""
    if access_days is None:
        return None
    start = now if current_end is None else max(now, current_end)
    return start + timedelta(days=access_days)


def is_renewable(ent: Entitlement | None) -> bool:
    """An active access with an end can be bought again, to extend it; lifetime access is
    owned."""
    return ent is not None and ent.status == "active" and ent.access_ends_at is not None


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
    access_days: int | None = None,
) -> Transition:
    """``existing`` (or a new row) moved by ``cause`` to its opening status, with no payment as
    its source yet (the callers refuse an active row first); opened active, its access ends
    ``access_days`` from now (None: lifetime)."""
    previous = existing.status if existing else None
    status = next_status(previous, cause)
    ends = access_end(access_days, now) if status == "active" else None
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
            access_ends_at=ends,
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
            access_ends_at=ends,
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
    access_days: int | None = None,
) -> Transition:
    """A checkout's transition: active with an end -> its renewal (:func:`renew`, or a
    :func:`renewal_checkout` when paid); active for life -> COURSE_ALREADY_OWNED; pending or
    revoked -> the same row with the new initial status; none -> a new row."""
    if existing is not None and is_renewable(existing):
        if free:
            return renew(existing, access_days, actor=user_actor(user_id), now=now)
        return renewal_checkout(existing, actor=user_actor(user_id), now=now)
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
        access_days=access_days,
    )


def renewal_checkout(ent: Entitlement, *, actor: str, now: datetime) -> Transition:
    """A paid checkout of an access that still lasts: the access goes on unchanged while the
    payment is open (the step records that payment)."""
    next_status(ent.status, "renewal_checkout")
    return Transition(
        replace(ent, version=ent.version + 1), "active", "renewal_checkout", actor, None, now
    )


def renew(
    ent: Entitlement,
    access_days: int | None,
    *,
    actor: str,
    now: datetime,
    reason: str | None = None,
    transaction_id: uuid.UUID | None = None,
) -> Transition:
    """An active access bought again: its end moves ``access_days`` on from the later of now
    and its current end (None: it becomes lifetime access); a payment (``transaction_id``)
    becomes its source."""
    next_status(ent.status, "access_renewed")
    changed = replace(
        ent,
        access_ends_at=access_end(access_days, now, ent.access_ends_at),
        source_payment_transaction_id=transaction_id or ent.source_payment_transaction_id,
        version=ent.version + 1,
    )
    return Transition(changed, "active", "access_renewed", actor, reason, now, transaction_id)


def expire(ent: Entitlement, now: datetime) -> Transition:
    """The end of a time-limited access: revoked, with reason ``expired``."""
    return transition(ent, "access_expired", actor=ACCESS_EXPIRY_ACTOR, now=now, reason=EXPIRED)


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
    access_days: int | None = None,
) -> Transition:
    """Apply a payment outcome, expiry or revoke to an existing entitlement; ``transaction_id``
    is the payment the step is about (it becomes the entitlement's source payment only on a
    completion, whose access lasts ``access_days`` from now; None: lifetime). A revoked row
    keeps the end its access had."""
    status = next_status(ent.status, cause)
    ends = ent.access_ends_at
    if cause == "payment_completed":
        ends = access_end(access_days, now)
    changed = replace(
        ent,
        status=status,
        access_revoked_at=now if status == "revoked" else None,
        source_payment_transaction_id=(
            transaction_id if cause == "payment_completed" else ent.source_payment_transaction_id
        ),
        version=ent.version + 1,
        status_changed_at=now,
        access_ends_at=ends,
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
    access_days: int | None = None,
) -> Transition:
    """A gift claimed by ``user_id``: their new or revoked row active, the gift's payment its
    source and the step's payment; the actor is the claimer, the reason names the gift; the
    access lasts ``access_days`` from the claim (None: lifetime)."""
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
        access_days=access_days,
    )
    ent = replace(t.entitlement, source_payment_transaction_id=payment_id)
    return replace(t, entitlement=ent, payment_transaction_id=payment_id)
