"""Events produced by the commerce service (stream ``COMMERCE``, subjects ``commerce.>``).

Aggregates (the envelope's ``aggregate_id``): plan id, entitlement id, payment transaction id,
lead id, custom course purchase id.
"""

from __future__ import annotations

import uuid

from coursemesh.contracts.envelope import Event, event
from coursemesh.contracts.types import (
    Cents,
    CurrencyCode,
    CustomCourseCode,
    EntitlementCause,
    EntitlementCauseName,
    EntitlementStatus,
    LeadSource,
    NonEmptyStr,
    PaymentProvider,
    UserId,
    UtcDateTime,
)

__all__ = [
    "CustomCoursePurchased",
    "EntitlementChanged",
    "EntitlementChangedV2",
    "LeadCreated",
    "PaymentCompleted",
    "PaymentFailed",
    "PaymentRefunded",
    "PlanPriced",
]


@event("commerce.plan.priced.v1")
class PlanPriced(Event, frozen=True, kw_only=True):
    """A course's plan was created, re-priced, activated or deactivated; carries the full plan.

    Emitted by ``PATCH …/courses/:id/price`` (one plan of type ``course`` per course). Catalog
    projects it for the storefront: price, and "no active plan" -> 404.
    """

    plan_id: uuid.UUID
    course_id: uuid.UUID
    organization_id: uuid.UUID
    price_in_cents: Cents
    currency: CurrencyCode
    is_active: bool


@event("commerce.entitlement.changed.v1")
class EntitlementChanged(Event, frozen=True, kw_only=True):
    """An entitlement (a buyer's access to a course) was created or changed; carries its full state.

    Emitted on every transition between ``pending``, ``active`` and ``revoked`` (checkout, webhook
    outcome, refund, expiry sweep, staff revoke) and when a replayed completion refreshes the
    transaction link.
    Learning projects it: only ``active`` without ``access_revoked_at`` opens the player.
    """

    entitlement_id: uuid.UUID
    user_id: UserId
    course_id: uuid.UUID
    organization_id: uuid.UUID
    status: EntitlementStatus
    access_revoked_at: UtcDateTime | None
    source_payment_transaction_id: uuid.UUID | None
    """The payment transaction that activated it; ``None`` for a free checkout."""
    membership_id: uuid.UUID | None
    """The buyer's membership of the seller org when the buyer is a member; ``None`` for a buyer
    who is not (a lead)."""
    previous_status: EntitlementStatus | None
    """``None`` when the row was just created."""
    cause: EntitlementCause
    reason: str | None
    """Free text, e.g. the staff revoke reason."""
    changed_at: UtcDateTime


@event("commerce.entitlement.changed.v2")
class EntitlementChangedV2(Event, frozen=True, kw_only=True):
    """An entitlement was created or changed; carries its full state. The fields of
    ``commerce.entitlement.changed.v1``, with ``cause`` an open set
    (:data:`~coursemesh.contracts.types.EntitlementCauseName`) so that new ways to gain or lose
    access (a staff grant) need no new version.

    Emitted on every transition. Commerce also emits v1 beside it, with the same aggregate
    version, for each transition whose cause v1 knows, until every consumer reads v2; a
    transition with a cause v1 does not know is in v2 only. Learning and integrations read v2.
    """

    entitlement_id: uuid.UUID
    user_id: UserId
    course_id: uuid.UUID
    organization_id: uuid.UUID
    status: EntitlementStatus
    access_revoked_at: UtcDateTime | None
    source_payment_transaction_id: uuid.UUID | None
    """The payment transaction that activated it; ``None`` when no payment did."""
    membership_id: uuid.UUID | None
    previous_status: EntitlementStatus | None
    """``None`` when the row was just created."""
    cause: EntitlementCauseName
    reason: str | None
    """Free text: the staff member's reason for a revoke or a grant, the coupon used;
    ``expired`` when a time-limited access ended."""
    changed_at: UtcDateTime
    """When this change happened."""
    access_ends_at: UtcDateTime | None = None
    """When the access ends (``None``: lifetime access); on a revoked entitlement, when it was
    to end. A renewal (cause ``access_renewed``) moves it."""


@event("commerce.payment.completed.v1")
class PaymentCompleted(Event, frozen=True, kw_only=True):
    """A payment succeeded (provider webhook verified, cross-org guard passed).

    What it paid for: ``entitlement_id`` (a course), ``custom_course_purchase_id`` (a custom
    course offer), ``bundle_purchase_id`` (a bundle: each of its entitlements changes in its own
    ``entitlement.changed`` event) or ``gift_id`` (a course bought for someone else, with
    ``entitlement_id`` once its recipient claimed it).
    """

    transaction_id: uuid.UUID
    entitlement_id: uuid.UUID | None
    custom_course_purchase_id: uuid.UUID | None
    organization_id: uuid.UUID
    user_id: UserId
    amount_in_cents: Cents
    currency: CurrencyCode
    provider: PaymentProvider
    provider_transaction_id: NonEmptyStr
    completed_at: UtcDateTime
    bundle_purchase_id: uuid.UUID | None = None
    gift_id: uuid.UUID | None = None


@event("commerce.payment.failed.v1")
class PaymentFailed(Event, frozen=True, kw_only=True):
    """A payment failed or was declined at the provider.

    What it paid for: ``entitlement_id`` (a course), ``custom_course_purchase_id`` (a custom
    course offer), ``bundle_purchase_id`` (a bundle: each of its entitlements changes in its own
    ``entitlement.changed`` event) or ``gift_id`` (a course bought for someone else, with
    ``entitlement_id`` once its recipient claimed it).
    """

    transaction_id: uuid.UUID
    entitlement_id: uuid.UUID | None
    custom_course_purchase_id: uuid.UUID | None
    organization_id: uuid.UUID
    user_id: UserId
    amount_in_cents: Cents
    currency: CurrencyCode
    provider: PaymentProvider
    provider_transaction_id: NonEmptyStr
    failure_reason: str | None
    failed_at: UtcDateTime
    bundle_purchase_id: uuid.UUID | None = None
    gift_id: uuid.UUID | None = None


@event("commerce.payment.refunded.v1")
class PaymentRefunded(Event, frozen=True, kw_only=True):
    """A completed payment was refunded (or charged back) at the provider.

    ``amount_in_cents`` is the amount refunded; a course entitlement it paid for is revoked
    (its own ``entitlement.changed`` event follows).

    What it paid for: ``entitlement_id`` (a course), ``custom_course_purchase_id`` (a custom
    course offer), ``bundle_purchase_id`` (a bundle: each of its entitlements changes in its own
    ``entitlement.changed`` event) or ``gift_id`` (a course bought for someone else, with
    ``entitlement_id`` once its recipient claimed it).
    """

    transaction_id: uuid.UUID
    entitlement_id: uuid.UUID | None
    custom_course_purchase_id: uuid.UUID | None
    organization_id: uuid.UUID
    user_id: UserId
    amount_in_cents: Cents
    currency: CurrencyCode
    provider: PaymentProvider
    provider_transaction_id: NonEmptyStr
    refunded_at: UtcDateTime
    bundle_purchase_id: uuid.UUID | None = None
    gift_id: uuid.UUID | None = None


@event("commerce.lead.created.v1")
class LeadCreated(Event, frozen=True, kw_only=True):
    """A buyer who is not a member of the seller's organization became a lead of it at checkout.

    Emitted when the lead is linked to an organization (``organization_leads`` row), whether the
    lead itself was new or reused from another organization.
    """

    lead_id: uuid.UUID
    organization_id: uuid.UUID
    user_id: UserId
    email: str | None
    source: LeadSource
    created_at: UtcDateTime


@event("commerce.custom_course.purchased.v1")
class CustomCoursePurchased(Event, frozen=True, kw_only=True):
    """A custom course offer was bought and paid for (or was free); custom-gen opens a purchase.

    Each purchase is one personalised course; a buyer may buy the same offer several times.
    """

    purchase_id: uuid.UUID
    offer_id: uuid.UUID
    user_id: UserId
    organization_id: uuid.UUID
    course_code: CustomCourseCode
    offer_title: NonEmptyStr
    amount_in_cents: Cents
    currency: CurrencyCode
    transaction_id: uuid.UUID | None
    """The completed payment; ``None`` for a free offer."""
    purchased_at: UtcDateTime
