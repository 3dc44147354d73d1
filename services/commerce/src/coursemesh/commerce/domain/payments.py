"""Payments: what a verified provider event says, the payment it must match, and what it does
to the payment, the entitlement or the custom course purchase it names. Pure: no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from coursemesh.chassis.errors import DomainError, Unprocessable
from coursemesh.commerce.domain.entitlements import (
    Cause,
    Entitlement,
    Transition,
    refresh_payment_link,
    renew,
    transition,
)
from coursemesh.commerce.domain.pricing import format_amount
from coursemesh.contracts.types import PaymentProvider as ProviderName

Outcome = Literal["completed", "failed", "refunded", "disputed", "expired"]
PaymentStatus = Literal[
    "pending", "completed", "failed", "expired", "refunded", "disputed", "superseded"
]
PurchaseStatus = Literal["pending", "paid", "failed", "refunded"]

#: The actor of the transitions a provider's webhook causes.
WEBHOOK_ACTOR = "provider-webhook"

#: What the provider says of a hosted payment it was asked to expire: ``expired`` (it can no
#: longer be paid: expired now, before, or never payable) or ``completed`` (the buyer paid it).
ExpiryOutcome = Literal["expired", "completed"]

#: Why a payment that completed late is refunded instead of applied: its session had been
#: superseded by a newer checkout, or the entitlement was already active through another payment.
LateReason = Literal["late_payment_superseded", "late_payment_already_active"]
LATE_REASONS: tuple[LateReason, ...] = ("late_payment_superseded", "late_payment_already_active")
#: Why we refund a payment: a late one, or its buyer asked inside the plan's refund window.
RefundReason = LateReason | Literal["requested_by_customer"]
#: ``payment_transactions.status_reason`` of a payment a newer checkout superseded.
SUPERSEDED = "superseded"

OUTCOME_CAUSES: dict[Outcome, Cause] = {
    "completed": "payment_completed",
    "failed": "payment_failed",
    "expired": "checkout_expired",
    "refunded": "payment_refunded",
    "disputed": "payment_disputed",
}


@dataclass(frozen=True)
class PaymentEvent:
    """A verified provider webhook, translated to what commerce cares about.

    ``outcome`` is None for event types commerce ignores (they are still recorded, so a
    replay is recognised). ``amount_in_cents`` and ``currency`` (ISO 4217, upper case) are what
    the provider says was charged; None when the event type carries no amount of the checkout."""

    provider_event_id: str
    type: str
    outcome: Outcome | None
    provider_transaction_id: str | None = None
    provider_payment_id: str | None = None
    metadata: Mapping[str, str] | None = None
    failure_reason: str | None = None
    amount_in_cents: int | None = None
    currency: str | None = None
    #: the connected account the payment happened on (None: the event names none)
    account_id: str | None = None


@dataclass(frozen=True, slots=True)
class Payment:
    """A ``payment_transactions`` row: one hosted payment of a checkout."""

    id: uuid.UUID
    organization_id: uuid.UUID
    user_id: str
    entitlement_id: uuid.UUID | None
    custom_course_purchase_id: uuid.UUID | None
    amount_in_cents: int
    currency: str
    provider: ProviderName
    provider_transaction_id: str | None
    provider_payment_id: str | None
    status: str
    buyer_email: str | None
    description: str
    version: int
    #: why it ended as it did (``superseded``, a :data:`LateReason`); None otherwise
    status_reason: str | None = None
    #: the seller's connected account it was opened on
    provider_account_id: str | None = None
    #: how long the access it buys lasts (None: lifetime); ``renewal``: it extends an access
    #: its buyer held when checking out
    access_days: int | None = None
    renewal: bool = False
    #: the bundle purchase it pays for (its entitlements are the purchase's)
    bundle_purchase_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Purchase:
    """A ``custom_course_purchases`` row."""

    id: uuid.UUID
    offer_id: uuid.UUID
    organization_id: uuid.UUID
    user_id: str
    status: str
    version: int


@dataclass(frozen=True, slots=True)
class Seller:
    name: str
    logo_url: str | None


@dataclass(frozen=True, slots=True)
class Receipt:
    transaction_id: uuid.UUID
    email: str
    subject: str
    body: str


def payment_mismatch(
    payment: Payment,
    event: PaymentEvent,
    *,
    entitlement_id: uuid.UUID | None = None,
    purchase_id: uuid.UUID | None = None,
    gift_payment_id: uuid.UUID | None = None,
    bundle_purchase_id: uuid.UUID | None = None,
) -> DomainError | None:
    """A valid signature says who sent the event, not that it is about what was charged: the
    event must name this purchase's own payment and carry its amount and currency. The refusal,
    or None when the event matches. ``gift_payment_id``: the payment of the gift the event
    names (a gift's payment names no entitlement and no purchase)."""
    if gift_payment_id is not None and gift_payment_id != payment.id:
        return Unprocessable(
            "The webhook's payment is not the one of this gift", code="WEBHOOK_PAYMENT_MISMATCH"
        )
    if (payment.entitlement_id, payment.custom_course_purchase_id, payment.bundle_purchase_id) != (
        entitlement_id,
        purchase_id,
        bundle_purchase_id,
    ) or (
        event.provider_transaction_id is not None
        and event.provider_transaction_id != payment.provider_transaction_id
    ):
        return Unprocessable(
            "The webhook's payment is not the one of this purchase",
            code="WEBHOOK_PAYMENT_MISMATCH",
        )
    if amount_differs(payment, event):
        return Unprocessable(
            f"The webhook's amount ({event.amount_in_cents} {event.currency}) is not what"
            f" the checkout charged ({payment.amount_in_cents} {payment.currency})",
            code="WEBHOOK_AMOUNT_MISMATCH",
        )
    return None


def amount_differs(payment: Payment, event: PaymentEvent) -> bool:
    if event.amount_in_cents is None and event.currency is None:
        # Only a completion has to say what was paid; e.g. a Stripe refund may be partial.
        return event.outcome == "completed"
    return (event.amount_in_cents, (event.currency or "").upper()) != (
        payment.amount_in_cents,
        payment.currency.upper(),
    )


def payment_status_after(status: str, outcome: Outcome) -> PaymentStatus | None:
    """The payment's next status for ``outcome``; None when it does not change it (a replayed
    completion, a failure after completion, a refund of a payment never completed)."""
    if outcome == "completed":
        return None if status == "completed" else "completed"
    if outcome in ("failed", "expired"):
        return outcome if status == "pending" else None
    return outcome if status == "completed" else None


@dataclass(frozen=True, slots=True)
class Refresh:
    """An active entitlement's completion replayed: only its payment link changes."""

    entitlement: Entitlement


EntitlementEffect = Transition | Refresh | None


def entitlement_after_payment(
    ent: Entitlement,
    payment: Payment,
    event: PaymentEvent,
    now: datetime,
    *,
    payment_open: bool = True,
) -> EntitlementEffect:
    """What a payment outcome does to the entitlement it names: a completion activates it,
    its access lasting the payment's ``access_days``; on an active row the first completion
    of a renewal extends the access, any other only refreshes the payment link, if that
    changed (a renewal's end is then already counted); a failed or
    expired payment only ends a pending checkout, and only when it was the checkout's open
    payment (``payment_open``: pending before the event; the expiry of a payment a newer
    checkout superseded leaves that checkout pending); a refund or dispute only revokes the row
    its own payment activated. None: the entitlement stays as it is."""
    payment_id = payment.id
    outcome = event.outcome or "failed"
    if outcome == "completed":
        if ent.status == "active":
            if payment.renewal and payment.status != "completed":
                return renew(
                    ent,
                    payment.access_days,
                    actor=WEBHOOK_ACTOR,
                    now=now,
                    transaction_id=payment_id,
                )
            refreshed = refresh_payment_link(ent, payment_id)
            return None if refreshed is None else Refresh(refreshed)
        return transition(
            ent,
            "payment_completed",
            actor=WEBHOOK_ACTOR,
            now=now,
            transaction_id=payment_id,
            access_days=payment.access_days,
        )
    still_relevant = (
        ent.status == "pending" and payment_open
        if outcome in ("failed", "expired")
        else ent.status == "active" and ent.source_payment_transaction_id == payment_id
    )
    if not still_relevant:
        return None
    return transition(
        ent,
        OUTCOME_CAUSES[outcome],
        actor=WEBHOOK_ACTOR,
        now=now,
        reason=event.failure_reason,
        transaction_id=payment_id,
    )


def payments_to_supersede(payments: Sequence[Payment]) -> list[Payment]:
    """What a new checkout of an entitlement ends first: every payment of it still open
    (pending; normally at most one), so that one payment at most can be paid for it."""
    return [p for p in payments if p.status == "pending"]


LateOutcome = LateReason | Literal["refunded_already"]


def late_payment(ent: Entitlement, payment: Payment, event: PaymentEvent) -> LateOutcome | None:
    """Whether a verified completion is a late payment, refunded instead of applied: the
    payment was superseded by a newer checkout, or the entitlement is already active through
    another payment (a second charge for one course; a renewal's charge is not one).
    ``refunded_already``: a completion of a payment already refunded as late (the provider's
    other event for it): nothing to do.
    None: an ordinary completion (or a replay of the one that activated the entitlement)."""
    if event.outcome != "completed":
        return None
    if payment.status == "refunded" and payment.status_reason in LATE_REASONS:
        return "refunded_already"
    if payment.status == "superseded":
        return "late_payment_superseded"
    if (
        payment.status != "completed"
        and not payment.renewal
        and ent.status == "active"
        and ent.source_payment_transaction_id != payment.id
    ):
        return "late_payment_already_active"
    return None


def purchase_status_after(purchase: Purchase, outcome: Outcome) -> PurchaseStatus | None:
    """A completion pays a purchase not yet paid; a failure or expiry fails a pending one; a
    refund or dispute refunds one no longer pending. None: unchanged."""
    if outcome == "completed":
        return None if purchase.status == "paid" else "paid"
    new_status: PurchaseStatus = "refunded" if outcome in ("refunded", "disputed") else "failed"
    if (new_status == "failed") == (purchase.status == "pending"):
        return new_status
    return None


def receipt(payment: Payment, seller: Seller | None) -> Receipt | None:
    """The receipt of a completed paid purchase, to the email captured at checkout; without
    one its ``email`` is empty and the receipt sender asks the buyer directory."""
    seller_name = seller.name if seller else "coursemesh"
    amount = format_amount(payment.amount_in_cents, payment.currency)
    lines = [
        f"Thank you for your purchase from {seller_name}.",
        "",
        f"Item: {payment.description}",
        f"Amount: {amount}",
        f"Currency: {payment.currency}",
        f"Seller: {seller_name}",
    ]
    if seller and seller.logo_url:
        lines.append(f"Logo: {seller.logo_url}")
    lines += ["", f"Reference: {payment.id}"]
    return Receipt(
        transaction_id=payment.id,
        email=payment.buyer_email or "",
        subject=f"Your receipt from {seller_name}: {payment.description}",
        body="\n".join(lines),
    )
