"""The events commerce publishes, built from the domain's state (the adapters stage them with
the writes that cause them)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast, get_args

from coursemesh.commerce.domain.checkout import LeadLink, Offer
from coursemesh.commerce.domain.entitlements import Cause, Entitlement, Status, Transition
from coursemesh.commerce.domain.payments import Payment
from coursemesh.contracts import Event
from coursemesh.contracts.commerce import (
    CustomCoursePurchased,
    EntitlementChanged,
    EntitlementChangedV2,
    LeadCreated,
    PaymentCompleted,
    PaymentFailed,
    PaymentRefunded,
)
from coursemesh.contracts.types import EntitlementCause


def entitlement_events(
    ent: Entitlement,
    *,
    previous_status: Status | None,
    cause: Cause,
    reason: str | None,
    changed_at: datetime | None = None,
) -> list[Event]:
    """The events of one change of an entitlement (its full state after it), all with its
    aggregate version (``ent.version``): v2, and v1 beside it when v1 knows the cause (for
    consumers of the previous release)."""
    v2 = EntitlementChangedV2(
        entitlement_id=ent.id,
        user_id=ent.user_id,
        course_id=ent.course_id,
        organization_id=ent.organization_id,
        status=ent.status,
        access_revoked_at=ent.access_revoked_at,
        source_payment_transaction_id=ent.source_payment_transaction_id,
        membership_id=ent.membership_id,
        previous_status=previous_status,
        cause=cause,
        reason=reason,
        changed_at=changed_at or ent.status_changed_at,
        access_ends_at=ent.access_ends_at,
    )
    if cause not in V1_CAUSES:
        return [v2]
    # the same fields: v1 differs only in the type of ``cause``
    v1 = EntitlementChanged(
        **{f: getattr(v2, f) for f in EntitlementChanged.__struct_fields__ if f != "cause"},
        cause=cast(EntitlementCause, cause),
    )
    return [v1, v2]


#: The causes ``commerce.entitlement.changed.v1`` can carry.
V1_CAUSES = frozenset(get_args(EntitlementCause))


def transition_events(t: Transition) -> list[Event]:
    return entitlement_events(
        t.entitlement,
        previous_status=t.previous_status,
        cause=t.cause,
        reason=t.reason,
        changed_at=t.at,
    )


def lead_created(lead: LeadLink, lead_id: uuid.UUID, now: datetime) -> LeadCreated:
    """A buyer's lead newly linked to a seller (its aggregate version is always 1)."""
    return LeadCreated(
        lead_id=lead_id,
        organization_id=lead.organization_id,
        user_id=lead.user_id,
        email=lead.email,
        source=lead.source,
        created_at=now,
    )


def custom_course_purchased(
    offer: Offer,
    purchase_id: uuid.UUID,
    user_id: str,
    transaction_id: uuid.UUID | None,
    now: datetime,
) -> CustomCoursePurchased:
    """A purchase is announced once (aggregate version 1), when it is paid or free."""
    return CustomCoursePurchased(
        purchase_id=purchase_id,
        offer_id=offer.id,
        user_id=user_id,
        organization_id=offer.organization_id,
        course_code=offer.code,
        offer_title=offer.title,
        amount_in_cents=offer.price_in_cents,
        currency=offer.currency,
        transaction_id=transaction_id,
        purchased_at=now,
    )


def payment_changed(
    payment: Payment,
    status: str,
    *,
    entitlement_id: uuid.UUID | None,
    purchase_id: uuid.UUID | None,
    failure_reason: str | None,
    now: datetime,
    gift_id: uuid.UUID | None = None,
) -> PaymentCompleted | PaymentFailed | PaymentRefunded | None:
    """The event of a payment reaching ``status`` (None: an expiry publishes nothing)."""
    if status not in ("completed", "failed", "refunded", "disputed"):
        return None
    if status == "completed":
        return PaymentCompleted(
            transaction_id=payment.id,
            entitlement_id=entitlement_id,
            custom_course_purchase_id=purchase_id,
            organization_id=payment.organization_id,
            user_id=payment.user_id,
            amount_in_cents=payment.amount_in_cents,
            currency=payment.currency,
            provider=payment.provider,
            provider_transaction_id=cast(str, payment.provider_transaction_id),
            completed_at=now,
            bundle_purchase_id=payment.bundle_purchase_id,
            gift_id=gift_id,
        )
    if status == "failed":
        return PaymentFailed(
            transaction_id=payment.id,
            entitlement_id=entitlement_id,
            custom_course_purchase_id=purchase_id,
            organization_id=payment.organization_id,
            user_id=payment.user_id,
            amount_in_cents=payment.amount_in_cents,
            currency=payment.currency,
            provider=payment.provider,
            provider_transaction_id=cast(str, payment.provider_transaction_id),
            failure_reason=failure_reason,
            failed_at=now,
            bundle_purchase_id=payment.bundle_purchase_id,
            gift_id=gift_id,
        )
    return PaymentRefunded(
        transaction_id=payment.id,
        entitlement_id=entitlement_id,
        custom_course_purchase_id=purchase_id,
        organization_id=payment.organization_id,
        user_id=payment.user_id,
        amount_in_cents=payment.amount_in_cents,
        currency=payment.currency,
        provider=payment.provider,
        provider_transaction_id=cast(str, payment.provider_transaction_id),
        refunded_at=now,
        bundle_purchase_id=payment.bundle_purchase_id,
        gift_id=gift_id,
    )
