"""The ports of commerce's use cases: the payment provider, and the stores each use case loads
its facts from and saves its outcome to (SQL implementations in ``adapters/``, in-memory fakes
in the unit tests)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from coursemesh.chassis.errors import BadRequest, DomainError, Unprocessable
from coursemesh.chassis.staff import StaffDirectory
from coursemesh.chassis.transaction import Transaction
from coursemesh.commerce.domain.access import EndingAccess, ExpiryNotice
from coursemesh.commerce.domain.accounts import AccountEvent, AccountState, PaymentAccount
from coursemesh.commerce.domain.bulk_grants import BulkJob, GrantRow, RowResult
from coursemesh.commerce.domain.bundles import Bundle
from coursemesh.commerce.domain.checkout import CourseFacts, LeadLink, Offer, Opening
from coursemesh.commerce.domain.coupons import Coupon, CouponUsage
from coursemesh.commerce.domain.entitlements import Entitlement, Transition
from coursemesh.commerce.domain.gifts import Gift
from coursemesh.commerce.domain.history import RecordedStep
from coursemesh.commerce.domain.payments import (
    ExpiryOutcome,
    LateReason,
    Outcome,
    Payment,
    PaymentEvent,
    Purchase,
    PurchaseStatus,
    Receipt,
    RefundReason,
    Seller,
)
from coursemesh.commerce.domain.refunds import PaidAccess
from coursemesh.contracts.types import PaymentProvider as ProviderName

__all__ = [
    "META_ENTITLEMENT",
    "META_GIFT",
    "META_PURCHASE",
    "META_TRANSACTION",
    "AccountStore",
    "AccountTransaction",
    "BuyerDirectory",
    "BuyerStanding",
    "CheckoutLookup",
    "CheckoutStore",
    "CheckoutSummary",
    "CheckoutTransaction",
    "CheckoutWrite",
    "DirectoryUnavailable",
    "EntitlementRepository",
    "ExpiryOutcome",
    "HistoryReader",
    "HistoryStore",
    "HostedPayment",
    "HostedPaymentRequest",
    "LeadEntry",
    "OnboardingLink",
    "Outcome",
    "PaymentDraft",
    "PaymentEvent",
    "PaymentLedger",
    "PaymentProvider",
    "PaymentProviderRefused",
    "PaymentProviderUnavailable",
    "PendingCheckout",
    "Plan",
    "PlanDraft",
    "ProviderName",
    "RefundRequest",
    "Saved",
    "StaffStore",
    "StaffTransaction",
    "StoredAnswer",
    "SweeperBatch",
    "SweeperStore",
    "TransactionalCheckoutStore",
    "WebhookRejected",
    "WebhookStore",
]

# The metadata keys every hosted payment carries back to us in its webhooks.
META_ENTITLEMENT = "courseEntitlementId"
META_PURCHASE = "customCoursePurchaseId"
META_TRANSACTION = "paymentTransactionId"
META_GIFT = "giftId"
#: A bundle's payment names the bundle purchase it pays for (one payment, several courses).
META_BUNDLE_PURCHASE = "bundlePurchaseId"


# --- the payment provider ------------------------------------------------------------------


@dataclass(frozen=True)
class HostedPaymentRequest:
    """A hosted payment on the seller's connected account (``account_id``): the buyer pays
    the seller; ``application_fee_in_cents`` of it goes to the platform. After paying the buyer
    is sent to ``success_url`` (``{CHECKOUT_SESSION_ID}`` in it replaced by the session's id),
    on giving up to ``cancel_url``."""

    transaction_id: uuid.UUID
    organization_id: uuid.UUID
    account_id: str
    seller_name: str
    seller_logo_url: str | None
    description: str
    amount_in_cents: int
    currency: str
    application_fee_in_cents: int
    buyer_email: str | None
    metadata: dict[str, str]
    expires_at: datetime
    success_url: str
    cancel_url: str


@dataclass(frozen=True)
class HostedPayment:
    provider_transaction_id: str
    payment_page_url: str


@dataclass(frozen=True)
class RefundRequest:
    """A whole refund of a payment: one we will not apply (a late payment) or one its buyer
    asked for inside the refund window; ``reason`` is ours, recorded with the refund."""

    transaction_id: uuid.UUID
    account_id: str | None
    provider_transaction_id: str | None
    provider_payment_id: str | None
    amount_in_cents: int
    currency: str
    reason: RefundReason


@dataclass(frozen=True)
class OnboardingLink:
    """Where a seller's staff give the provider their details (single use, short-lived)."""

    url: str
    expires_at: datetime


class UserDirectoryUnavailable(DomainError):
    """The identity provider's directory could not be asked (a user named by e-mail)."""

    status, code, title = 503, "USER_DIRECTORY_UNAVAILABLE", "Service Unavailable"


class PaymentProviderUnavailable(DomainError):
    """The payment provider failed or could not be reached (a 5xx, a timeout, an answer we
    cannot use): nothing was changed; the client may try again."""

    status, code, title = 502, "PAYMENT_PROVIDER_UNAVAILABLE", "Bad Gateway"


class PaymentProviderRefused(Unprocessable):
    """The payment provider refused the request as it was (for example a return URL it does
    not accept): nothing was changed; the same request would be refused again."""

    code = "PAYMENT_PROVIDER_REFUSED"


class WebhookRejected(BadRequest):
    """The webhook's signature or timestamp did not verify, or its verified body is not an
    event of the provider (``WEBHOOK_MALFORMED``)."""

    code = "WEBHOOK_SIGNATURE_INVALID"


class PaymentProvider(Protocol):
    name: ProviderName

    async def create_hosted_payment(
        self, tx: Transaction, request: HostedPaymentRequest
    ) -> HostedPayment:
        """Open a hosted payment; ``tx`` is the checkout's transaction (the sandbox stores its
        session there through ``await tx.driver()``, an external provider ignores it)."""
        ...

    def verify_webhook(
        self, organization_id: uuid.UUID | None, body: bytes, headers: Mapping[str, str]
    ) -> PaymentEvent | AccountEvent:
        """Verify the signature over the raw body (+-5 min) and parse; raise WebhookRejected.
        ``organization_id`` is the organization of the endpoint's URL, when it names one (the
        sandbox signs per organization; Stripe signs every event with the platform endpoint's
        secret). The event names the connected account it happened on."""
        ...

    async def create_account(
        self, tx: Transaction, organization_id: uuid.UUID, seller_name: str
    ) -> AccountState:
        """Open a connected account for the organization (Stripe: ``POST /v1/accounts``)."""
        ...

    async def retrieve_account(self, tx: Transaction, account_id: str) -> AccountState:
        """The account's current state at the provider."""
        ...

    async def onboarding_link(
        self, tx: Transaction, account_id: str, return_url: str, refresh_url: str
    ) -> OnboardingLink:
        """A link where the seller gives the provider their details; the provider sends them
        to ``return_url`` when done, to ``refresh_url`` when the link has expired."""
        ...

    async def confirm_event(self, tx: Transaction, event: PaymentEvent) -> None:
        """Raise a DomainError when the provider's own records contradict a verified event
        (``tx`` is the webhook's transaction); return when they do not."""
        ...

    async def expire_hosted_payment(
        self, tx: Transaction, provider_transaction_id: str, account_id: str | None
    ) -> ExpiryOutcome:
        """Make the hosted payment unpayable (Stripe: expire the Checkout Session; the sandbox:
        mark its session expired, in ``tx``). ``expired`` also when it was no longer payable;
        ``completed`` when the buyer paid it meanwhile (nothing is expired then). Raise
        PaymentProviderUnavailable when the provider fails."""
        ...

    async def refund_payment(self, tx: Transaction, request: RefundRequest) -> None:
        """Refund the whole payment (idempotent: a payment refunded before is not refunded
        again). Raise PaymentProviderUnavailable when the provider fails."""
        ...


# --- entitlements ----------------------------------------------------------------------------


class EntitlementRepository(Protocol):
    """Entitlements in a transaction; every saved transition gets its audit row and its
    ``entitlement.changed``."""

    async def lock(
        self, entitlement_id: uuid.UUID, organization_id: uuid.UUID | None = None
    ) -> Entitlement | None:
        """The entitlement (of ``organization_id``, when given), locked until the end of the
        transaction; None when there is none."""
        ...

    async def save(self, t: Transition) -> None:
        """Write a transition of an existing entitlement: its row, its audit row, its event."""
        ...

    async def refresh(self, ent: Entitlement) -> None:
        """Write an active entitlement whose payment link changed (no transition, no audit
        row) and publish its state."""
        ...


# --- checkout --------------------------------------------------------------------------------

Saved = Literal["saved", "lost"]


class CheckoutWrite(Protocol):
    """One attempt at a course checkout: its reads, then its writes."""

    async def course_facts(self, course_id: uuid.UUID, user_id: str) -> CourseFacts | None:
        """The facts of the decision (None: no such course); a transactional store locks the
        buyer's entitlement."""
        ...

    def accepts(self, opening: Opening) -> bool:
        """Whether this store writes ``opening`` (the fast store writes only new free ones)."""
        ...

    async def save(self, opening: Opening, now: datetime) -> Saved:
        """Write the opening, its lead link and its events. ``lost``: a concurrent checkout of
        the same buyer wrote first, and whatever this store writes in one go was not written
        (read the facts again and decide again)."""
        ...


class CheckoutStore(Protocol):
    def write(self) -> AbstractAsyncContextManager[CheckoutWrite]: ...


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The answer kept under an ``Idempotency-Key``, with the request it answered."""

    fingerprint: str
    response: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PaymentDraft:
    """A new ``payment_transactions`` row (pending, version 1)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    user_id: str
    entitlement_id: uuid.UUID | None
    custom_course_purchase_id: uuid.UUID | None
    amount_in_cents: int
    currency: str
    provider: ProviderName
    metadata: dict[str, str]
    buyer_email: str | None
    description: str
    provider_account_id: str
    #: the plan's refund window when it was bought (the buyer's refund request uses it)
    refund_window_days: int | None = None
    #: the plan's access duration when it was bought (None: lifetime); ``renewal``: the
    #: payment extends an access its buyer holds
    access_days: int | None = None
    renewal: bool = False
    #: the bundle purchase it pays for (its entitlements are the purchase's items)
    bundle_purchase_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class BuyerStanding:
    """A buyer's relation to a seller: their membership, their lead and its link."""

    membership_id: uuid.UUID | None
    lead_id: uuid.UUID | None
    linked: bool


class CheckoutTransaction(CheckoutWrite, Protocol):
    """A checkout in one transaction: every case of a course checkout, offers, idempotency and
    the payment it opens."""

    @property
    def transaction(self) -> Transaction: ...

    async def stored_answer(self, user_id: str, key: str) -> StoredAnswer | None:
        """The answer stored under the key, after taking the key's lock until the end of the
        transaction (a concurrent retry waits for this one)."""
        ...

    async def store_answer(
        self, user_id: str, key: str, fingerprint: str, response: Mapping[str, Any]
    ) -> None: ...

    async def offer(self, code: str) -> Offer | None: ...

    async def buyer_standing(self, organization_id: uuid.UUID, user_id: str) -> BuyerStanding: ...

    async def save_lead(self, lead: LeadLink, now: datetime) -> None:
        """Create or reuse the buyer's lead, link it to the seller (membership null) and
        publish ``lead.created`` when the link is new."""
        ...

    async def add_purchase(
        self, purchase_id: uuid.UUID, offer: Offer, user_id: str, status: PurchaseStatus
    ) -> None: ...

    async def add_payment(self, draft: PaymentDraft) -> None: ...

    async def seller(self, organization_id: uuid.UUID) -> Seller | None: ...

    async def payment_account(self, organization_id: uuid.UUID) -> PaymentAccount | None:
        """The organization's account at the provider; None: it has none."""
        ...

    async def return_allowlist(self, organization_id: uuid.UUID) -> tuple[str, ...]:
        """The organization's return URL allowlist (empty when staff set none)."""
        ...

    async def set_provider_transaction(
        self, transaction_id: uuid.UUID, provider_transaction_id: str, payment_page_url: str
    ) -> None: ...

    async def entitlement_payments(self, entitlement_id: uuid.UUID) -> Sequence[Payment]:
        """The entitlement's payments that are still pending, locked until the end of the
        transaction."""
        ...

    async def supersede_payment(
        self, payment: Payment, superseded_by: uuid.UUID | None, actor: str, now: datetime
    ) -> None:
        """Mark a pending payment ``superseded`` (reason, replacement, version bumped) with
        its audit row."""
        ...

    async def locked_coupon(self, organization_id: uuid.UUID, code: str) -> Coupon | None:
        """The organization's coupon, locked until the end of the transaction (checkouts using
        one coupon count its uses one after another)."""
        ...

    async def coupon_usage(
        self, coupon_id: uuid.UUID, user_id: str, course_id: uuid.UUID
    ) -> CouponUsage:
        """The uses holding a place under the coupon's caps, leaving out the buyer's own
        pending checkout of the course (which the checkout asking supersedes)."""
        ...

    async def add_coupon_use(self, use: CouponUse) -> None: ...

    async def add_gift(self, gift: Gift) -> None:
        """A new gift (pending: its payment is opened in the same transaction)."""
        ...


@dataclass(frozen=True, slots=True)
class CouponUse:
    """A checkout that used a coupon: the payment it discounts (None: it made the course
    free) decides whether it holds a place under the coupon's caps."""

    id: uuid.UUID
    coupon_id: uuid.UUID
    user_id: str
    course_id: uuid.UUID
    entitlement_id: uuid.UUID
    payment_transaction_id: uuid.UUID | None
    price_in_cents: int
    discount_in_cents: int
    currency: str


@dataclass(frozen=True, slots=True)
class CouponSummary:
    """A coupon with its uses: ``redeemed`` (paid, or free at once), ``reserved`` (payment
    still open)."""

    coupon: Coupon
    redeemed: int
    reserved: int


@dataclass(frozen=True, slots=True)
class PricedCourse:
    status: str
    organization_id: uuid.UUID
    price_in_cents: int | None  # None: no active plan
    currency: str | None


class CouponTransaction(Protocol):
    @property
    def directory(self) -> StaffDirectory: ...

    async def course_organizations(self, course_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """Each known course's organization (courses commerce has not heard of are absent)."""
        ...

    async def add_coupon(self, coupon: Coupon, created_by: str) -> bool:
        """False: the organization already has a coupon with this code (nothing written)."""
        ...

    async def coupons(
        self, organization_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[list[CouponSummary], int]: ...

    async def coupon(self, organization_id: uuid.UUID, code: str) -> Coupon | None: ...

    async def usage(
        self, coupon_id: uuid.UUID, user_id: str, course_id: uuid.UUID
    ) -> CouponUsage: ...

    async def priced_course(self, course_id: uuid.UUID) -> PricedCourse | None: ...


class CouponStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[CouponTransaction]: ...


class RefundTransaction(Protocol):
    @property
    def transaction(self) -> Transaction: ...

    async def own_entitlement(self, user_id: str, course_id: uuid.UUID) -> Entitlement | None:
        """The buyer's entitlement to the course, locked until the end of the transaction."""
        ...

    async def paid_access(self, payment_id: uuid.UUID) -> tuple[Payment, PaidAccess] | None:
        """The payment, locked until the end of the transaction, with its refund facts."""
        ...

    async def mark_refund_requested(
        self, payment: Payment, actor: str, reason: str | None, at: datetime
    ) -> None:
        """Record the buyer's request on the payment, with an audit row."""
        ...


class RefundStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[RefundTransaction]: ...


class TransactionalCheckoutStore(Protocol):
    def write(self) -> AbstractAsyncContextManager[CheckoutTransaction]: ...


# --- staff -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanDraft:
    """The course's plan as staff sets it (upserted on the course)."""

    course_id: uuid.UUID
    organization_id: uuid.UUID
    price_in_cents: int
    currency: str
    is_active: bool
    #: days after a payment completes during which the buyer's refund request is approved
    #: (None: no self-service refunds); ``keep_refund_window``: leave the plan's as it is
    refund_window_days: int | None = None
    keep_refund_window: bool = False
    #: days an access bought lasts from its activation (None: lifetime);
    #: ``keep_access_days``: leave the plan's as it is
    access_days: int | None = None
    keep_access_days: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    id: uuid.UUID
    course_id: uuid.UUID
    organization_id: uuid.UUID
    price_in_cents: int
    currency: str
    is_active: bool
    version: int
    refund_window_days: int | None = None
    access_days: int | None = None


@dataclass(frozen=True, slots=True)
class LeadEntry:
    """A lead linked to an organization, as its staff lists them."""

    lead_id: uuid.UUID
    user_id: str
    email: str | None
    source: str
    membership_id: uuid.UUID | None
    linked_at: datetime


class StaffTransaction(Protocol):
    @property
    def directory(self) -> StaffDirectory: ...

    @property
    def entitlements(self) -> EntitlementRepository: ...

    @property
    def transaction(self) -> Transaction: ...

    async def course_organization(self, course_id: uuid.UUID) -> uuid.UUID | None:
        """The organization of the course in the projection (any status); None: unknown."""
        ...

    async def organization_currency(self, organization_id: uuid.UUID) -> str | None:
        """None: the organization has not reached commerce yet."""
        ...

    async def upsert_plan(self, plan: PlanDraft) -> Plan:
        """Insert the plan or update the course's one (its version bumped)."""
        ...

    async def user_entitlement(self, user_id: str, course_id: uuid.UUID) -> Entitlement | None:
        """The user's entitlement to the course, locked until the end of the transaction."""
        ...

    async def membership_id(self, organization_id: uuid.UUID, user_id: str) -> uuid.UUID | None: ...

    async def add_entitlement(self, t: Transition) -> bool:
        """Write a new entitlement with its audit row and events; False (nothing written)
        when the user has one for the course already (a concurrent write made it)."""
        ...

    async def add_offer(self, offer: Offer) -> bool:
        """False: the code is taken."""
        ...

    async def course_entitlements(
        self, organization_id: uuid.UUID, course_id: uuid.UUID, limit: int, offset: int
    ) -> tuple[Sequence[Entitlement], int]: ...

    async def organization_leads(
        self, organization_id: uuid.UUID, limit: int, offset: int
    ) -> tuple[Sequence[LeadEntry], int]: ...

    # --- bulk grants run in the background (app.bulk_grants) ---

    async def add_bulk_job(self, job: BulkJob, rows: Sequence[GrantRow]) -> None:
        """Queue the job with the rows of its file."""
        ...

    async def bulk_job(
        self, organization_id: uuid.UUID, course_id: uuid.UUID, job_id: uuid.UUID
    ) -> tuple[BulkJob, list[RowResult]] | None:
        """The course's job and the results of its rows done so far; None: no such job."""
        ...

    async def claim_bulk_job(
        self, now: datetime, lease: timedelta
    ) -> tuple[BulkJob, list[GrantRow], list[RowResult]] | None:
        """The oldest job not done whose runner's lease ended (a queued one has none),
        leased for ``lease`` and marked running; with its rows and its results so far."""
        ...

    async def lock_bulk_job_at(self, job_id: uuid.UUID, processed: int) -> bool:
        """Lock the job until the end of the transaction; False when its progress is no
        longer ``processed`` (another runner went on with it)."""
        ...

    async def save_bulk_progress(
        self,
        job_id: uuid.UUID,
        processed: int,
        results: Sequence[RowResult],
        *,
        finished_at: datetime | None,
        lease_until: datetime,
    ) -> None:
        """Add a chunk's results and the job's new progress (done with ``finished_at``)."""
        ...


class StaffStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[StaffTransaction]: ...


# --- access history ----------------------------------------------------------------------------


class HistoryReader(Protocol):
    """The reads of one access history query (the staff check on the same connection)."""

    @property
    def directory(self) -> StaffDirectory: ...

    async def entitlement_in(
        self, organization_id: uuid.UUID, entitlement_id: uuid.UUID
    ) -> Entitlement | None:
        """The entitlement, when it is the organization's; None otherwise."""
        ...

    async def own_entitlement(self, user_id: str, course_id: uuid.UUID) -> Entitlement | None:
        """The user's entitlement to the course; None: they have none."""
        ...

    async def steps(
        self, entitlement_id: uuid.UUID, limit: int, offset: int
    ) -> tuple[Sequence[RecordedStep], int]:
        """A page of the entitlement's audited steps in the order they happened, each with
        the payment it names, and how many there are in all."""
        ...


class HistoryStore(Protocol):
    def reading(self) -> AbstractAsyncContextManager[HistoryReader]: ...


# --- sellers' payment accounts and return URLs ----------------------------------------------


class AccountTransaction(Protocol):
    @property
    def transaction(self) -> Transaction: ...

    async def is_admin(self, organization_id: uuid.UUID, user_id: str) -> bool:
        """Whether the user is an owner or admin of the organization (money settings are
        theirs, not every trainer's)."""
        ...

    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool: ...

    async def seller(self, organization_id: uuid.UUID) -> Seller | None:
        """None: the organization has not reached commerce yet."""
        ...

    async def payment_account(self, organization_id: uuid.UUID) -> PaymentAccount | None: ...

    async def lock_account(self, organization_id: uuid.UUID) -> PaymentAccount | None:
        """The organization's account, locked until the end of the transaction (two onboarding
        requests at once open one account)."""
        ...

    async def add_account(self, account: PaymentAccount) -> None: ...

    async def save_account(self, account: PaymentAccount) -> None: ...

    async def return_allowlist(self, organization_id: uuid.UUID) -> tuple[str, ...]: ...

    async def set_return_allowlist(
        self, organization_id: uuid.UUID, urls: tuple[str, ...], actor: str, now: datetime
    ) -> None: ...


class AccountStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[AccountTransaction]: ...


# --- payment webhooks ------------------------------------------------------------------------


class PaymentLedger(Protocol):
    """One webhook's transaction: the payments, purchases and receipts it changes."""

    @property
    def transaction(self) -> Transaction: ...

    @property
    def entitlements(self) -> EntitlementRepository: ...

    async def account_organization(
        self, provider: ProviderName, account_id: str
    ) -> uuid.UUID | None:
        """The organization holding the connected account; None: no organization does."""
        ...

    async def lock_account(self, organization_id: uuid.UUID) -> PaymentAccount | None: ...

    async def save_account(self, account: PaymentAccount) -> None:
        """Write the account's new state (its version is the new one)."""
        ...

    async def record_event(
        self,
        provider: ProviderName,
        event: PaymentEvent | AccountEvent,
        organization_id: uuid.UUID,
    ) -> bool:
        """Record the provider event id; False when it was recorded before (a replay)."""
        ...

    async def lock_payment(
        self,
        own_id: uuid.UUID | None,
        provider_transaction_id: str | None,
        provider_payment_id: str | None,
    ) -> Payment | None:
        """The payment any of the ids names, locked; None when none is given or known."""
        ...

    async def course_organization(self, course_id: uuid.UUID) -> uuid.UUID | None: ...

    async def lock_purchase(self, purchase_id: uuid.UUID) -> Purchase | None: ...

    async def offer_of(self, purchase: Purchase) -> Offer: ...

    async def lock_bundle_purchase(self, purchase_id: uuid.UUID) -> BundlePurchase | None:
        """The bundle purchase, locked, with its items (course and entitlement)."""
        ...

    async def set_payment_status(
        self,
        payment: Payment,
        status: str,
        *,
        completed_at: datetime | None = None,
        provider_payment_id: str | None = None,
    ) -> int:
        """Write the payment's new status (and completion); returns its new version."""
        ...

    async def set_purchase_status(
        self, purchase: Purchase, status: PurchaseStatus, transaction_id: uuid.UUID | None
    ) -> None: ...

    async def seller(self, organization_id: uuid.UUID) -> Seller | None: ...

    async def queue_receipt(self, receipt: Receipt) -> None:
        """Queue the receipt (once per payment: a second one is ignored)."""
        ...

    async def record_late_refund(
        self,
        payment: Payment,
        reason: LateReason,
        *,
        provider_payment_id: str | None,
        now: datetime,
    ) -> int:
        """A late payment refunded: status ``refunded`` with its reason and time, its audit
        row; returns the payment's new version."""
        ...

    async def lock_gift(
        self, gift_id: uuid.UUID | None, payment_id: uuid.UUID | None
    ) -> Gift | None:
        """The gift of this id, or else the one this payment pays, locked; None: no such gift
        (or no id given)."""
        ...

    async def save_gift(self, gift: Gift) -> None:
        """Write the gift's status, claim token hash and sending."""
        ...


class WebhookStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[PaymentLedger]: ...


# --- the pages a buyer returns to ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckoutSummary:
    """What the platform's return pages show of a checkout, found by its payment session."""

    description: str
    seller_name: str
    seller_logo_url: str | None
    amount_in_cents: int
    currency: str
    #: the payment's status (``pending`` until the provider's webhook is applied)
    status: str
    payment_page_url: str | None


class CheckoutLookup(Protocol):
    async def by_session(self, session: str) -> CheckoutSummary | None:
        """The checkout whose payment has this id (ours) or this provider session id."""
        ...


# --- abandoned checkouts ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingCheckout:
    """A pending entitlement the sweeper claimed, with the payment still open for it (None:
    none is known)."""

    entitlement: Entitlement
    open_payment_id: uuid.UUID | None


class SweeperBatch(Protocol):
    @property
    def entitlements(self) -> EntitlementRepository: ...

    async def claim_pending(
        self, changed_before: datetime, limit: int
    ) -> Sequence[PendingCheckout]:
        """Pending entitlements unchanged since before ``changed_before``, oldest first, locked
        (rows another transaction holds are skipped), each with its open payment."""
        ...

    async def claim_abandoned_payments(
        self, opened_before: datetime, limit: int
    ) -> Sequence[Payment]:
        """Pending payments opened before ``opened_before`` that no pending entitlement waits
        for (a renewal's, a gift's), oldest first, locked as :meth:`claim_pending` does."""
        ...

    async def end_payment(
        self, payment: Payment, status: str, *, actor: str, now: datetime
    ) -> None:
        """The payment's new status (its version bumped) and its audit row."""
        ...

    async def lock_gift_of(self, payment_id: uuid.UUID) -> Gift | None:
        """The gift the payment pays for, locked; None: it pays for none."""
        ...

    async def save_gift(self, gift: Gift) -> None: ...


class SweeperStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[SweeperBatch]: ...


# --- time-limited access ---------------------------------------------------------------------


class AccessExpiryBatch(Protocol):
    @property
    def entitlements(self) -> EntitlementRepository: ...

    async def claim_ended(self, now: datetime, limit: int) -> Sequence[Entitlement]:
        """Active entitlements whose access ended by ``now``, locked (rows another
        transaction holds are skipped)."""
        ...

    async def claim_ending(
        self, now: datetime, until: datetime, limit: int
    ) -> Sequence[EndingAccess]:
        """Active entitlements whose access ends after ``now`` and by ``until`` and whose
        buyer was not told of that end yet, locked as :meth:`claim_ended` does."""
        ...

    async def queue_notice(self, notice: ExpiryNotice) -> None:
        """Queue the mail (once per notice id) and mark its end date told on the entitlement;
        the mail sender is woken once the transaction commits."""
        ...


class AccessExpiryStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[AccessExpiryBatch]: ...


# --- receipts: where a buyer is written to -----------------------------------------------------


class DirectoryUnavailable(Exception):
    """The identity directory could not answer now (network, 5xx, rate limit, a refused key):
    the receipt is retried later, the attempt counted."""


class BuyerDirectory(Protocol):
    """The identity provider's address book, asked for a buyer whose token carried no email."""

    async def email_of(self, user_id: str) -> str | None:
        """The user's primary email address; None: the directory knows no address for them
        (an unknown user included). Raises :class:`DirectoryUnavailable` when it cannot say."""
        ...

    async def user_with_email(self, email: str) -> str | None:
        """The id of the one user with the address ``email``; None: no user has it (or more
        than one, which the directory cannot tell apart). Raises :class:`DirectoryUnavailable`
        when it cannot say."""
        ...


# --- gifts -------------------------------------------------------------------------------------


class GiftTransaction(Protocol):
    """A claim, a resend or the payer's list, in one transaction."""

    @property
    def transaction(self) -> Transaction: ...

    @property
    def entitlements(self) -> EntitlementRepository: ...

    async def lock_by_token(self, token_hash: str) -> Gift | None:
        """The gift whose current claim token has this hash, locked (two claims of one link
        run one after the other)."""
        ...

    async def lock_own(self, gift_id: uuid.UUID, payer_user_id: str) -> Gift | None:
        """The payer's gift, locked; None for another payer's."""
        ...

    async def save_gift(self, gift: Gift) -> None: ...

    async def user_entitlement(self, user_id: str, course_id: uuid.UUID) -> Entitlement | None:
        """The user's entitlement to the course, locked until the end of the transaction."""
        ...

    async def membership_id(self, organization_id: uuid.UUID, user_id: str) -> uuid.UUID | None: ...

    async def add_entitlement(self, t: Transition) -> bool:
        """A new entitlement with its audit row and events; False (nothing written) when the
        user has one for the course already."""
        ...

    async def seller(self, organization_id: uuid.UUID) -> Seller | None: ...

    async def queue_mail(self, mail: Receipt) -> None:
        """Queue a mail for the receipt sender."""
        ...

    async def payer_gifts(
        self, payer_user_id: str, offset: int, limit: int
    ) -> tuple[Sequence[Gift], int]:
        """A page of the payer's gifts, newest first, and how many there are."""
        ...


class GiftStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[GiftTransaction]: ...


# --- bundles ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BundleItem:
    """A course a bundle purchase opened, its entitlement, and its list price then."""

    course_id: uuid.UUID
    entitlement_id: uuid.UUID
    list_price_in_cents: int


@dataclass(frozen=True, slots=True)
class BundlePurchase:
    """One checkout of a bundle: the courses it opened (``items``), those it left out because
    the buyer owned them, what it charged, and its payment (None: nothing to pay)."""

    id: uuid.UUID
    bundle_id: uuid.UUID
    organization_id: uuid.UUID
    user_id: str
    amount_in_cents: int
    currency: str
    payment_transaction_id: uuid.UUID | None
    items: tuple[BundleItem, ...]
    excluded_course_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True, slots=True)
class BundleCourse:
    """A course of a bundle as the storefront shows it."""

    course_id: uuid.UUID
    name: str | None
    price_in_cents: int | None
    currency: str | None
    organization_id: uuid.UUID | None
    status: str | None


class BundleTransaction(Protocol):
    @property
    def directory(self) -> StaffDirectory: ...

    async def bundle_courses(self, course_ids: list[uuid.UUID]) -> dict[uuid.UUID, BundleCourse]:
        """Each known course with its active plan (courses commerce has not heard of are
        absent)."""
        ...

    async def add_bundle(self, bundle: Bundle, created_by: str) -> None: ...

    async def bundles(
        self, organization_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[list[Bundle], int]: ...

    async def bundle(self, bundle_id: uuid.UUID) -> Bundle | None: ...


class BundleStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[BundleTransaction]: ...


class BundleCheckoutTransaction(CheckoutTransaction, Protocol):
    """A course checkout's transaction, and the bundle's reads and writes."""

    async def bundle(self, bundle_id: uuid.UUID) -> Bundle | None: ...

    async def add_bundle_purchase(self, purchase: BundlePurchase) -> None: ...


class BundleCheckoutStore(Protocol):
    def write(self) -> AbstractAsyncContextManager[BundleCheckoutTransaction]: ...
