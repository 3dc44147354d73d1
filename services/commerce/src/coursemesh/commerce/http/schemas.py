"""Request and response bodies (camelCase on the wire, unknown fields rejected)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from coursemesh.commerce.domain.bulk_grants import BulkJob, RowResult, outcome_counts
from coursemesh.commerce.domain.entitlements import Entitlement
from coursemesh.commerce.domain.history import ActorType, HistoryEntry

Cents = Annotated[int, msgspec.Meta(ge=0, le=100_000_000)]


RefundWindowDays = Annotated[int, msgspec.Meta(ge=0, le=365)]
AccessDays = Annotated[int, msgspec.Meta(ge=1, le=3650)]


class PriceBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    price_in_cents: Cents
    is_active: bool = True
    #: days after payment during which a buyer's refund request is approved; null: none;
    #: absent: unchanged
    refund_window_days: RefundWindowDays | msgspec.UnsetType | None = msgspec.UNSET
    #: days an access bought lasts from its activation; null: lifetime; absent: unchanged
    access_days: AccessDays | msgspec.UnsetType | None = msgspec.UNSET


class PlanView(msgspec.Struct, rename="camel"):
    plan_id: uuid.UUID
    course_id: uuid.UUID
    organization_id: uuid.UUID
    price_in_cents: int
    currency: str
    is_active: bool
    refund_window_days: int | None
    access_days: int | None


class RevokeBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]


class GrantBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """Comp access: the user, by the identity provider's id (``sub``) or by the e-mail address
    it knows them by (exactly one of the two), and why."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    user_id: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[^\x00]+$")] | None
    ) = None
    email: Email | None = None


class OfferBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    code: Annotated[str, msgspec.Meta(pattern=r"^X[A-Z0-9]{5}$")]
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    price_in_cents: Cents


class OfferView(msgspec.Struct, rename="camel"):
    offer_id: uuid.UUID
    organization_id: uuid.UUID
    code: str
    title: str
    price_in_cents: int
    currency: str


class EntitlementView(msgspec.Struct, rename="camel"):
    entitlement_id: uuid.UUID
    user_id: str
    course_id: uuid.UUID
    organization_id: uuid.UUID
    status: str
    access_revoked_at: datetime | None
    source_payment_transaction_id: uuid.UUID | None
    membership_id: uuid.UUID | None
    version: int
    #: when the access ends (null: lifetime); on a revoked entitlement, when it was to end
    access_ends_at: datetime | None = None

    @classmethod
    def of(cls, ent: Entitlement) -> EntitlementView:
        return cls(
            entitlement_id=ent.id,
            user_id=ent.user_id,
            course_id=ent.course_id,
            organization_id=ent.organization_id,
            status=ent.status,
            access_revoked_at=ent.access_revoked_at,
            source_payment_transaction_id=ent.source_payment_transaction_id,
            membership_id=ent.membership_id,
            version=ent.version,
            access_ends_at=ent.access_ends_at,
        )


class LeadView(msgspec.Struct, rename="camel"):
    lead_id: uuid.UUID
    user_id: str
    email: str | None
    source: str
    membership_id: uuid.UUID | None
    linked_at: datetime


class EntitlementPage(msgspec.Struct, rename="camel"):
    items: list[EntitlementView]
    total: int
    limit: int
    offset: int


class LeadPage(msgspec.Struct, rename="camel"):
    items: list[LeadView]
    total: int
    limit: int
    offset: int


class AccessHistoryPayment(msgspec.Struct, rename="camel", omit_defaults=False):
    """The payment a step names, as it stands now (null fields: not known to commerce)."""

    #: pending | completed | failed | expired | superseded | refunded | disputed
    status: str | None
    amount_in_cents: int | None
    currency: str | None


class AccessHistoryEntry(msgspec.Struct, rename="camel", omit_defaults=False):
    """One step of an entitlement: what it was, what it became, why and by whom."""

    at: datetime
    #: null for the step that created the entitlement
    from_status: str | None
    to_status: str
    cause: str
    #: ``user:<id>``, ``provider-webhook`` or ``system:<name>``; null in the buyer's own view
    #: when a staff member took the step
    actor: str | None
    actor_type: ActorType
    reason: str | None
    #: our payment id (the ``paymentId`` of the checkout); null: no payment involved
    payment_id: uuid.UUID | None
    payment: AccessHistoryPayment | None

    @classmethod
    def of(cls, entry: HistoryEntry) -> AccessHistoryEntry:
        paid = entry.payment
        return cls(
            at=entry.at,
            from_status=entry.from_status,
            to_status=entry.to_status,
            cause=entry.cause,
            actor=entry.actor,
            actor_type=entry.actor_type,
            reason=entry.reason,
            payment_id=paid.id if paid else None,
            payment=None
            if paid is None
            else AccessHistoryPayment(
                status=paid.status, amount_in_cents=paid.amount_in_cents, currency=paid.currency
            ),
        )


class AccessHistoryPage(msgspec.Struct, rename="camel"):
    items: list[AccessHistoryEntry]
    total: int
    limit: int
    offset: int


class WebhookAck(msgspec.Struct, rename="camel"):
    status: str


ReturnUrl = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]


CouponCode = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class CheckoutBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """A checkout's optional body: where the hosted payment page sends the buyer back, and
    a coupon code (course checkouts)."""

    success_url: ReturnUrl | None = None
    cancel_url: ReturnUrl | None = None
    coupon_code: CouponCode | None = None
    #: a gift: the course is bought for this address (checked by the use case: 422
    #: ``GIFT_RECIPIENT_INVALID`` when it is not an e-mail address)
    gift_recipient_email: str | None = None


class OnboardingBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """Where the provider's onboarding sends the seller: when done, when the link expired."""

    return_url: ReturnUrl | None = None
    refresh_url: ReturnUrl | None = None


class PaymentAccountView(msgspec.Struct, rename="camel", omit_defaults=False):
    organization_id: uuid.UUID
    provider: str
    #: not_started | onboarding | pending_verification | enabled
    status: str
    account_id: str | None
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool


class OnboardingView(msgspec.Struct, rename="camel"):
    url: str
    expires_at: datetime
    account: PaymentAccountView


class AllowlistBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    urls: Annotated[list[ReturnUrl], msgspec.Meta(max_length=20)]


class AllowlistView(msgspec.Struct, rename="camel"):
    organization_id: uuid.UUID
    urls: list[str]


AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]
Cap = Annotated[int, msgspec.Meta(ge=1, le=10_000_000)]


class CouponBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """A coupon: exactly one of ``percentOff`` and ``amountOffCents`` (minor units of the
    course's currency); ``courseIds`` absent: every course of the organization."""

    code: Annotated[str, msgspec.Meta(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
    percent_off: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = None
    amount_off_cents: Annotated[int, msgspec.Meta(ge=1, le=100_000_000)] | None = None
    course_ids: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=500)] | None = None
    valid_from: AwareTime | None = None
    valid_until: AwareTime | None = None
    max_redemptions: Cap | None = None
    max_per_buyer: Cap | None = None


class CouponView(msgspec.Struct, rename="camel"):
    coupon_id: uuid.UUID
    organization_id: uuid.UUID
    code: str
    percent_off: int | None
    amount_off_cents: int | None
    course_ids: list[uuid.UUID] | None
    valid_from: datetime | None
    valid_until: datetime | None
    max_redemptions: int | None
    max_per_buyer: int | None
    #: uses whose payment completed (or that made the course free)
    redemptions: int
    #: uses whose payment is still open: they hold a place under the caps until it settles
    reserved: int
    created_at: datetime


class CouponPage(msgspec.Struct, rename="camel"):
    items: list[CouponView]
    total: int
    limit: int
    offset: int


class QuoteCoupon(msgspec.Struct, rename="camel"):
    code: str
    percent_off: int | None
    amount_off_cents: int | None


class QuoteView(msgspec.Struct, rename="camel"):
    course_id: uuid.UUID
    currency: str
    price_in_cents: int
    discount_in_cents: int
    total_in_cents: int
    coupon: QuoteCoupon | None


class RefundRequestBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] | None = None


class RefundRequestView(msgspec.Struct, rename="camel"):
    """The refund asked of the payment provider; access ends when the provider confirms it."""

    payment_id: uuid.UUID
    amount_in_cents: int
    currency: str
    status: str
    requested_at: datetime
    window_closes_at: datetime | None


class BulkGrantRowView(msgspec.Struct, rename="camel"):
    row: int
    #: the user granted (for a row naming an e-mail address: the one it was found to be)
    user_id: str | None
    email: str | None
    #: granted | regranted | already_active | pending_payment | invalid | duplicate
    outcome: str
    detail: str | None

    @classmethod
    def of(cls, result: RowResult) -> BulkGrantRowView:
        return cls(result.number, result.user_id, result.email, result.outcome, result.detail)


class BulkGrantView(msgspec.Struct, rename="camel"):
    dry_run: bool
    total: int
    #: rows per outcome (every outcome named, zero included)
    counts: dict[str, int]
    rows: list[BulkGrantRowView]


class BulkGrantJobView(msgspec.Struct, rename="camel"):
    job_id: uuid.UUID
    #: queued | running | done
    status: str
    dry_run: bool
    total: int
    #: rows done so far, and that as a whole percentage of ``total`` (100 only when done)
    processed: int
    percent: int
    #: rows done so far per outcome (every outcome named, zero included)
    counts: dict[str, int]
    created_at: datetime
    finished_at: datetime | None
    #: every row's result once the job is done; empty before
    rows: list[BulkGrantRowView]

    @classmethod
    def of(cls, job: BulkJob, results: list[RowResult]) -> BulkGrantJobView:
        done = job.status == "done"
        return cls(
            job_id=job.id,
            status=job.status,
            dry_run=job.dry_run,
            total=job.total,
            processed=job.processed,
            percent=job.percent,
            counts=outcome_counts(results),
            created_at=job.created_at,
            finished_at=job.finished_at,
            rows=[BulkGrantRowView.of(r) for r in results] if done else [],
        )


class GiftView(msgspec.Struct, rename="camel", omit_defaults=False):
    """A gift as its payer sees it (the claim token is never shown: it is only in the mail)."""

    gift_id: uuid.UUID
    course_id: uuid.UUID
    course_name: str
    organization_id: uuid.UUID
    recipient_email: str
    #: pending | paid | claimed | failed | cancelled | refunded
    status: str
    payment_id: uuid.UUID
    created_at: datetime
    #: when the claim link was last mailed (null: not yet: the payment is still open)
    sent_at: datetime | None
    send_count: int
    claimed_at: datetime | None


class GiftPage(msgspec.Struct, rename="camel"):
    items: list[GiftView]
    total: int
    limit: int
    offset: int


class GiftClaimView(msgspec.Struct, rename="camel"):
    """A claimed gift: the claimer's entitlement to the course."""

    gift_id: uuid.UUID
    course_id: uuid.UUID
    entitlement: EntitlementView


class BundleBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """Courses of the organization sold together at one price (minor units of the currency
    their plans share)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    course_ids: Annotated[list[uuid.UUID], msgspec.Meta(max_length=500)]
    price_in_cents: Cents


class BundleView(msgspec.Struct, rename="camel"):
    bundle_id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    course_ids: list[uuid.UUID]
    price_in_cents: int
    currency: str
    created_at: datetime


class BundlePage(msgspec.Struct, rename="camel"):
    items: list[BundleView]
    total: int
    limit: int
    offset: int


class PublicBundleCourse(msgspec.Struct, rename="camel"):
    course_id: uuid.UUID
    name: str | None
    #: the course's own price (its active plan's)
    list_price_in_cents: int


class PublicBundleView(msgspec.Struct, rename="camel"):
    bundle_id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    price_in_cents: int
    currency: str
    courses: list[PublicBundleCourse]
