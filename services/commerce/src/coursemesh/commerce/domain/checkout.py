"""The checkout decision: from what is known about a course and its buyer, what a checkout of
it does. Pure: no I/O; the use case loads the facts through a port and saves the outcome
through one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from coursemesh.chassis.errors import BadRequest, Conflict, DomainError, NotFound
from coursemesh.commerce.domain.coupons import Quote
from coursemesh.commerce.domain.entitlements import (
    CourseAlreadyOwned,
    Entitlement,
    Transition,
    is_renewable,
    open_for_checkout,
)
from coursemesh.commerce.domain.pricing import is_free
from coursemesh.contracts.types import LeadSource


@dataclass(frozen=True, slots=True)
class Buyer:
    """The signed-in user checking out (``email`` is the token's claim, if any)."""

    user_id: str
    email: str | None


@dataclass(frozen=True, slots=True)
class CourseFacts:
    """Everything a course checkout decides on: the course, its active plan, the buyer's
    membership of the seller, their lead and its link to the seller, their entitlement."""

    status: str
    organization_id: uuid.UUID
    name: str | None
    price_in_cents: int | None  # None: no active plan
    currency: str | None
    membership_id: uuid.UUID | None
    lead_id: uuid.UUID | None
    linked: bool  # the buyer's lead is linked to the seller
    entitlement: Entitlement | None
    refund_window_days: int | None = None  # the active plan's
    access_days: int | None = None  # the active plan's; None: lifetime access


@dataclass(frozen=True, slots=True)
class LeadLink:
    """A buyer who is not a member of the seller's organization becomes one of its leads:
    their lead (``new``: it does not exist yet, under ``lead_id``) linked to the seller."""

    lead_id: uuid.UUID
    organization_id: uuid.UUID
    user_id: str
    email: str | None
    source: LeadSource
    new: bool


@dataclass(frozen=True, slots=True)
class Charge:
    """What a paid checkout asks the payment provider for."""

    amount_in_cents: int
    currency: str
    description: str
    refund_window_days: int | None = None
    #: how long the access bought lasts (None: lifetime); ``renewal``: it extends an access
    #: the buyer holds
    access_days: int | None = None
    renewal: bool = False


# --- outcomes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refused:
    """A checkout that changes nothing and answers ``error``."""

    reason: Literal["unavailable", "no_active_plan", "already_owned"]

    def error(self) -> DomainError:
        if self.reason == "unavailable":
            return NotFound("This course is not available", code="COURSE_NOT_FOUND")
        if self.reason == "no_active_plan":
            return BadRequest("This course has no active plan", code="NO_ACTIVE_PLAN")
        return CourseAlreadyOwned("You already own this course")


class PreviousPaymentCompleted(Conflict):
    """A checkout of a pending entitlement whose open payment the provider reports paid: no
    second payment is opened (the provider's webhook activates the entitlement)."""

    code = "PREVIOUS_PAYMENT_COMPLETED"


UNAVAILABLE = Refused("unavailable")
NO_ACTIVE_PLAN = Refused("no_active_plan")
ALREADY_OWNED = Refused("already_owned")

OpeningKind = Literal["free_new", "paid_new", "reopen", "renew"]


@dataclass(frozen=True, slots=True)
class Opening:
    """A checkout that opens an entitlement: a new row (``free_new``, ``paid_new``), the
    buyer's pending or revoked row (``reopen``) or their time-limited access still running
    (``renew``), the lead link it adds (None for a member of
    the seller or a lead already linked to it), and the charge (None when free)."""

    kind: OpeningKind
    transition: Transition
    lead: LeadLink | None
    charge: Charge | None
    #: the price with the buyer's coupon, when they named one (its use is saved with it)
    quote: Quote | None = None

    @property
    def entitlement(self) -> Entitlement:
        return self.transition.entitlement

    def paid_with(self, payment_id: uuid.UUID) -> Opening:
        """The opening of a paid checkout, its step linked to the payment it opens (so the
        access history names the payment from the checkout on)."""
        return replace(self, transition=replace(self.transition, payment_transaction_id=payment_id))


CheckoutDecision = Refused | Opening


def lead_link(
    *,
    organization_id: uuid.UUID,
    buyer: Buyer,
    source: LeadSource,
    membership_id: uuid.UUID | None,
    lead_id: uuid.UUID | None,
    linked: bool,
    new_lead_id: uuid.UUID,
) -> LeadLink | None:
    """The lead link a purchase adds: none for a member of the seller's organization or a
    buyer whose lead is already linked to it."""
    if membership_id is not None or linked:
        return None
    return LeadLink(
        lead_id=lead_id or new_lead_id,
        organization_id=organization_id,
        user_id=buyer.user_id,
        email=buyer.email,
        source=source,
        new=lead_id is None,
    )


def decide_course_checkout(
    facts: CourseFacts | None,
    buyer: Buyer,
    *,
    course_id: uuid.UUID,
    now: datetime,
    new_id: uuid.UUID,
    new_lead_id: uuid.UUID,
    quote: Quote | None = None,
) -> CheckoutDecision:
    """A published course (else unavailable) with an active plan (else no active plan);
    an active entitlement is already owned unless its access ends, when the checkout renews it
    (free: extended at once; paid: extended when the payment completes); a pending or revoked
    one is reopened with the checkout's initial status; otherwise a new entitlement (active
    when free, pending when paid), its access lasting the plan's ``access_days``. ``quote``:
    the price after the buyer's coupon (a coupon that takes everything off makes the checkout
    free); the step's reason names the coupon."""
    if facts is None or facts.status != "published":
        return UNAVAILABLE
    price = facts.price_in_cents
    if price is None:
        return NO_ACTIVE_PLAN
    existing = facts.entitlement
    renewal = is_renewable(existing)
    if existing is not None and existing.status == "active" and not renewal:
        return ALREADY_OWNED
    if quote is not None:
        price = quote.total_in_cents
    free = is_free(price)
    transition = open_for_checkout(
        existing,
        new_id=new_id,
        user_id=buyer.user_id,
        course_id=course_id,
        organization_id=facts.organization_id,
        membership_id=facts.membership_id,
        buyer_email=buyer.email,
        free=free,
        now=now,
        access_days=facts.access_days,
    )
    lead = lead_link(
        organization_id=facts.organization_id,
        buyer=buyer,
        source="course_purchase",
        membership_id=facts.membership_id,
        lead_id=facts.lead_id,
        linked=facts.linked,
        new_lead_id=new_lead_id,
    )
    if quote is not None and quote.coupon is not None:
        transition = replace(transition, reason=f"coupon {quote.coupon.code}")
    charge = (
        None
        if free
        else Charge(
            price,
            facts.currency or "",
            facts.name or "Course",
            facts.refund_window_days,
            facts.access_days,
            renewal,
        )
    )
    kind: OpeningKind = (
        "renew"
        if renewal
        else "reopen"
        if existing is not None
        else "free_new"
        if free
        else "paid_new"
    )
    return Opening(kind, transition, lead, charge, quote)


def idempotency_fingerprint(kind: Literal["course", "offer", "bundle"], subject: object) -> str:
    """What an ``Idempotency-Key`` is bound to: a retry must name the same course or offer."""
    return f"{kind}:{subject}"


@dataclass(frozen=True, slots=True)
class Offer:
    """A custom course offer of an organization, bought by its code."""

    id: uuid.UUID
    organization_id: uuid.UUID
    code: str
    title: str
    price_in_cents: int
    currency: str
