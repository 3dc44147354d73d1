"""Payment webhooks: verified provider events change payments, entitlements, purchases and
sellers' payment accounts.

Every event names the connected account it happened on; the organization holding that account
is the event's organization, and an event may change nothing of another organization's (an
event whose account is no one's changes nothing; with the sandbox's per-organization URL, the
account must be that organization's).

A late payment (a completion of a payment a newer checkout superseded, or of one whose
entitlement is already active through another payment) is never applied: it is refunded at
the provider, recorded ``refunded`` with its reason and audited, ``payment.refunded`` is
published, and the entitlement, its receipt and its events stay as they are."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal, NoReturn

from opentelemetry import trace

from coursemesh.chassis.errors import DomainError, Forbidden, NotFound
from coursemesh.commerce.app.gifts import DEFAULT_CLAIM_PATH, ClaimLinks, apply_gift_outcome
from coursemesh.commerce.app.metrics import (
    webhook_cross_org_mismatches,
    webhook_payment_mismatches,
)
from coursemesh.commerce.app.ports import (
    META_BUNDLE_PURCHASE,
    META_ENTITLEMENT,
    META_GIFT,
    META_PURCHASE,
    META_TRANSACTION,
    PaymentLedger,
    PaymentProvider,
    RefundRequest,
    WebhookStore,
)
from coursemesh.commerce.domain.accounts import (
    AccountEvent,
    ConnectedAccountMissing,
    UnknownConnectedAccount,
    account_after,
)
from coursemesh.commerce.domain.events import custom_course_purchased, payment_changed
from coursemesh.commerce.domain.payments import (
    LateReason,
    Payment,
    PaymentEvent,
    Refresh,
    entitlement_after_payment,
    late_payment,
    payment_mismatch,
    payment_status_after,
    purchase_status_after,
    receipt,
)

log = logging.getLogger("coursemesh.commerce.webhooks")

Handled = Literal["applied", "duplicate", "ignored"]


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _now() -> datetime:
    return datetime.now(UTC)


class PaymentWebhooks:
    """Apply verified provider events. ``nudge_receipts`` wakes the receipt sender after a
    commit that queued a receipt."""

    def __init__(
        self,
        store: WebhookStore,
        provider: PaymentProvider,
        *,
        nudge_receipts: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = _now,
        gift_links: ClaimLinks = ClaimLinks(DEFAULT_CLAIM_PATH),
    ) -> None:
        self._store = store
        self._provider = provider
        self._nudge_receipts = nudge_receipts
        self._clock = clock
        self._gift_links = gift_links

    async def handle(
        self, event: PaymentEvent | AccountEvent, path_organization: uuid.UUID | None = None
    ) -> Handled:
        """Apply one verified webhook. ``path_organization`` is the organization the endpoint's
        URL names (the sandbox's), None for the platform's one endpoint. The provider event id
        is recorded in the same transaction, so a replay changes nothing; any rejection rolls
        back, recording nothing."""
        now = self._clock()
        async with self._store.transaction() as ledger:
            account_id = (
                event.state.account_id if isinstance(event, AccountEvent) else event.account_id
            )
            if account_id is None:
                if isinstance(event, PaymentEvent) and event.outcome is None:
                    return "ignored"  # nothing we act on, and no organization to record it for
                raise ConnectedAccountMissing(f"The {event.type} event names no connected account")
            organization_id = await ledger.account_organization(self._provider.name, account_id)
            if organization_id is None:
                _unknown_account(account_id, event)
            if path_organization is not None and organization_id != path_organization:
                _cross_org("account", path_organization, organization_id, event)
            if not await ledger.record_event(self._provider.name, event, organization_id):
                return "duplicate"
            if isinstance(event, AccountEvent):
                await self._apply_to_account(ledger, organization_id, event)
                return "applied"
            if event.outcome is None:
                return "ignored"
            metadata = event.metadata or {}
            payment = await ledger.lock_payment(
                _uuid(metadata.get(META_TRANSACTION)),
                event.provider_transaction_id,
                event.provider_payment_id,
            )
            ent_id = _uuid(metadata.get(META_ENTITLEMENT)) or (
                payment.entitlement_id if payment else None
            )
            purchase_id = _uuid(metadata.get(META_PURCHASE)) or (
                payment.custom_course_purchase_id if payment else None
            )
            bundle_purchase_id = _uuid(metadata.get(META_BUNDLE_PURCHASE)) or (
                payment.bundle_purchase_id if payment else None
            )
            if ent_id is not None:
                await self._apply_to_entitlement(
                    ledger, organization_id, ent_id, payment, event, now
                )
            elif bundle_purchase_id is not None:
                await self._apply_to_bundle(
                    ledger, organization_id, bundle_purchase_id, payment, event, now
                )
            elif purchase_id is not None:
                await self._apply_to_purchase(
                    ledger, organization_id, purchase_id, payment, event, now
                )
            elif META_GIFT in metadata or payment is not None:
                # a gift's payment names no entitlement and no purchase: the gift names it
                await self._apply_to_gift(
                    ledger, organization_id, _uuid(metadata.get(META_GIFT)), payment, event, now
                )
            elif not any(key in metadata for key in (META_TRANSACTION, META_ENTITLEMENT)):
                # a sale of the seller's own on its account, not made through us: acknowledged
                # (recorded), so the provider does not keep delivering it
                return "ignored"
            else:
                raise NotFound("The webhook names no known purchase", code="UNKNOWN_PAYMENT")
            return "applied"

    async def _apply_to_account(
        self, ledger: PaymentLedger, org_id: uuid.UUID, event: AccountEvent
    ) -> None:
        account = await ledger.lock_account(org_id)
        assert account is not None  # the account's organization was found by it
        changed = account_after(account, event.state)
        if changed is not None:
            await ledger.save_account(changed)
            log.info(
                "payment account %s of org %s: charges %s, payouts %s, details %s",
                changed.account_id,
                org_id,
                changed.charges_enabled,
                changed.payouts_enabled,
                changed.details_submitted,
            )

    async def _apply_to_entitlement(
        self,
        ledger: PaymentLedger,
        org_id: uuid.UUID,
        ent_id: uuid.UUID,
        payment: Payment | None,
        event: PaymentEvent,
        now: datetime,
    ) -> None:
        ent = await ledger.entitlements.lock(ent_id)
        if ent is None:
            raise NotFound("The webhook names an unknown entitlement", code="UNKNOWN_ENTITLEMENT")
        # The owner is the course's organization (the course projection is authoritative).
        course_org = await ledger.course_organization(ent.course_id) or ent.organization_id
        if course_org != org_id or (payment is not None and payment.organization_id != org_id):
            _cross_org("course-entitlement", org_id, course_org, event)
        if payment is None:
            raise NotFound("The webhook names an unknown payment", code="UNKNOWN_PAYMENT")
        await self._check_payment(ledger, org_id, payment, event, entitlement_id=ent.id)
        late = late_payment(ent, payment, event)
        if late == "refunded_already":
            return
        if late is not None:
            await self._refund_late(ledger, payment, event, late, now, entitlement_id=ent.id)
            return
        payment_open = payment.status == "pending"
        await self._settle_payment(ledger, payment, event, now, entitlement_id=ent.id)
        effect = entitlement_after_payment(ent, payment, event, now, payment_open=payment_open)
        if isinstance(effect, Refresh):
            await ledger.entitlements.refresh(effect.entitlement)
        elif effect is not None:
            await ledger.entitlements.save(effect)

    async def _apply_to_purchase(
        self,
        ledger: PaymentLedger,
        org_id: uuid.UUID,
        purchase_id: uuid.UUID,
        payment: Payment | None,
        event: PaymentEvent,
        now: datetime,
    ) -> None:
        purchase = await ledger.lock_purchase(purchase_id)
        if purchase is None:
            raise NotFound("The webhook names an unknown purchase", code="UNKNOWN_PURCHASE")
        if purchase.organization_id != org_id or (
            payment is not None and payment.organization_id != org_id
        ):
            _cross_org("custom-course-purchase", org_id, purchase.organization_id, event)
        if payment is None:
            raise NotFound("The webhook names an unknown payment", code="UNKNOWN_PAYMENT")
        await self._check_payment(ledger, org_id, payment, event, purchase_id=purchase_id)
        offer = await ledger.offer_of(purchase)
        await self._settle_payment(ledger, payment, event, now, purchase_id=purchase_id)
        status = purchase_status_after(purchase, event.outcome or "failed")
        if status is None:
            return
        paid = status == "paid"
        await ledger.set_purchase_status(purchase, status, payment.id if paid else None)
        if paid:
            ledger.transaction.publish(
                custom_course_purchased(offer, purchase_id, purchase.user_id, payment.id, now),
                aggregate_id=purchase_id,
                aggregate_version=1,
            )

    async def _apply_to_gift(
        self,
        ledger: PaymentLedger,
        org_id: uuid.UUID,
        gift_id: uuid.UUID | None,
        payment: Payment | None,
        event: PaymentEvent,
        now: datetime,
    ) -> None:
        """The gift's payment settled as any other; the gift then follows its outcome
        (``app.gifts``): paid with a claim link mailed, ended, cancelled or its claimer's
        access revoked."""
        gift = await ledger.lock_gift(gift_id, payment.id if payment else None)
        if gift is None:
            raise NotFound("The webhook names an unknown gift", code="UNKNOWN_GIFT")
        if gift.organization_id != org_id or (
            payment is not None and payment.organization_id != org_id
        ):
            _cross_org("gift", org_id, gift.organization_id, event)
        if payment is None:
            raise NotFound("The webhook names an unknown payment", code="UNKNOWN_PAYMENT")
        await self._check_payment(
            ledger, org_id, payment, event, gift_payment_id=gift.payment_transaction_id
        )
        await self._settle_payment(
            ledger, payment, event, now, entitlement_id=gift.entitlement_id, gift_id=gift.id
        )
        await apply_gift_outcome(ledger, gift, payment, event, now, self._gift_links)

    async def _apply_to_bundle(
        self,
        ledger: PaymentLedger,
        org_id: uuid.UUID,
        bundle_purchase_id: uuid.UUID,
        payment: Payment | None,
        event: PaymentEvent,
        now: datetime,
    ) -> None:
        """One payment, every entitlement of the bundle purchase: each gets what the payment's
        outcome does to a course's entitlement (``entitlement_after_payment``). A completion of
        a superseded payment, or one that finds every course already active through another
        payment, is refunded whole as late; a course that became active through another
        payment meanwhile is left as it is (the others are activated)."""
        purchase = await ledger.lock_bundle_purchase(bundle_purchase_id)
        if purchase is None:
            raise NotFound("The webhook names an unknown purchase", code="UNKNOWN_PURCHASE")
        if purchase.organization_id != org_id or (
            payment is not None and payment.organization_id != org_id
        ):
            _cross_org("bundle-purchase", org_id, purchase.organization_id, event)
        if payment is None or purchase.payment_transaction_id != payment.id:
            raise NotFound("The webhook names an unknown payment", code="UNKNOWN_PAYMENT")
        await self._check_payment(
            ledger, org_id, payment, event, bundle_purchase_id=bundle_purchase_id
        )
        ents = []
        for item in purchase.items:  # in the courses' id order, as the checkout locks them
            ent = await ledger.entitlements.lock(item.entitlement_id)
            if ent is None:
                raise NotFound(
                    "The webhook names an unknown entitlement", code="UNKNOWN_ENTITLEMENT"
                )
            ents.append(ent)
        lates = {late_payment(ent, payment, event) for ent in ents}
        if "refunded_already" in lates:
            return
        late: LateReason | None = None
        if "late_payment_superseded" in lates:
            late = "late_payment_superseded"
        elif lates == {"late_payment_already_active"}:
            late = "late_payment_already_active"
        if late is not None:
            await self._refund_late(ledger, payment, event, late, now, entitlement_id=None)
            return
        payment_open = payment.status == "pending"
        await self._settle_payment(ledger, payment, event, now)
        for ent in ents:
            if late_payment(ent, payment, event) is not None:
                continue  # active through another payment: left as it is
            effect = entitlement_after_payment(ent, payment, event, now, payment_open=payment_open)
            if isinstance(effect, Refresh):
                await ledger.entitlements.refresh(effect.entitlement)
            elif effect is not None:
                await ledger.entitlements.save(effect)

    async def _check_payment(
        self,
        ledger: PaymentLedger,
        org_id: uuid.UUID,
        payment: Payment,
        event: PaymentEvent,
        *,
        entitlement_id: uuid.UUID | None = None,
        purchase_id: uuid.UUID | None = None,
        gift_payment_id: uuid.UUID | None = None,
        bundle_purchase_id: uuid.UUID | None = None,
    ) -> None:
        """The event must name this purchase's own payment, carry its amount and currency,
        and agree with the provider's records. A refusal is logged with the trace, counted,
        and rolls back."""
        try:
            mismatch = payment_mismatch(
                payment,
                event,
                entitlement_id=entitlement_id,
                purchase_id=purchase_id,
                gift_payment_id=gift_payment_id,
                bundle_purchase_id=bundle_purchase_id,
            )
            if mismatch is not None:
                raise mismatch
            await self._provider.confirm_event(ledger.transaction, event)
        except DomainError as exc:
            span = trace.get_current_span().get_span_context()
            log.warning(
                "payment webhook refused (%s): org %s, transaction %s, event %s (trace %032x): %s",
                exc.code,
                org_id,
                payment.id,
                event.provider_event_id,
                span.trace_id,
                exc.detail,
            )
            webhook_payment_mismatches.add(1, code=exc.code)
            raise

    async def _settle_payment(
        self,
        ledger: PaymentLedger,
        payment: Payment,
        event: PaymentEvent,
        now: datetime,
        *,
        entitlement_id: uuid.UUID | None = None,
        purchase_id: uuid.UUID | None = None,
        gift_id: uuid.UUID | None = None,
    ) -> None:
        """The payment's new status and its event; a first completion queues the receipt."""
        status = payment_status_after(payment.status, event.outcome or "failed")
        if status is None:
            return
        completed = status == "completed"
        version = await ledger.set_payment_status(
            payment,
            status,
            completed_at=now if completed else None,
            provider_payment_id=(event.provider_payment_id or payment.provider_payment_id)
            if completed
            else None,
        )
        changed = payment_changed(
            payment,
            status,
            entitlement_id=entitlement_id,
            purchase_id=purchase_id,
            failure_reason=event.failure_reason,
            now=now,
            gift_id=gift_id,
        )
        if changed is not None:
            ledger.transaction.publish(changed, aggregate_id=payment.id, aggregate_version=version)
        if completed:
            await self._queue_receipt(ledger, payment)

    async def _refund_late(
        self,
        ledger: PaymentLedger,
        payment: Payment,
        event: PaymentEvent,
        reason: LateReason,
        now: datetime,
        *,
        entitlement_id: uuid.UUID | None,
    ) -> None:
        """Refund a late payment at the provider, record and audit the refund, publish
        ``payment.refunded``; no activation, no receipt. A provider failure raises (502): the
        webhook rolls back unrecorded, so the provider delivers it again."""
        provider_payment_id = event.provider_payment_id or payment.provider_payment_id
        await self._provider.refund_payment(
            ledger.transaction,
            RefundRequest(
                transaction_id=payment.id,
                account_id=event.account_id or payment.provider_account_id,
                provider_transaction_id=payment.provider_transaction_id,
                provider_payment_id=provider_payment_id,
                amount_in_cents=payment.amount_in_cents,
                currency=payment.currency,
                reason=reason,
            ),
        )
        version = await ledger.record_late_refund(
            payment, reason, provider_payment_id=provider_payment_id, now=now
        )
        refunded = payment_changed(
            payment,
            "refunded",
            entitlement_id=entitlement_id,
            purchase_id=None,
            failure_reason=reason,
            now=now,
        )
        assert refunded is not None
        ledger.transaction.publish(refunded, aggregate_id=payment.id, aggregate_version=version)
        span = trace.get_current_span().get_span_context()
        log.warning(
            "late payment refunded (%s): transaction %s, entitlement %s, event %s (trace %032x)",
            reason,
            payment.id,
            entitlement_id,
            event.provider_event_id,
            span.trace_id,
        )

    async def _queue_receipt(self, ledger: PaymentLedger, payment: Payment) -> None:
        """One receipt per completed paid purchase (member or not; without the buyer's email
        the receipt sender asks the buyer directory for it)."""
        mail = receipt(payment, await ledger.seller(payment.organization_id))
        assert mail is not None
        await ledger.queue_receipt(mail)
        ledger.transaction.after_commit(self._nudge_receipts)


def _unknown_account(account_id: str, event: PaymentEvent | AccountEvent) -> NoReturn:
    """Log with the trace, count, refuse: an account no organization of ours holds."""
    span = trace.get_current_span().get_span_context()
    log.error(
        "webhook for unknown connected account %s: event %s %s (trace %032x)",
        account_id,
        event.type,
        event.provider_event_id,
        span.trace_id,
    )
    webhook_cross_org_mismatches.add(1, kind="unknown-account")
    raise UnknownConnectedAccount(f"No organization holds the connected account {account_id!r}")


def _cross_org(
    kind: str, path_org: uuid.UUID, owner_org: uuid.UUID, event: PaymentEvent | AccountEvent
) -> NoReturn:
    """Log with the trace, count, refuse: nothing is changed (the transaction rolls back)."""
    span = trace.get_current_span().get_span_context()
    log.error(
        "%s webhook cross-org mismatch: url org %s, owner org %s, event %s (trace %032x)",
        kind,
        path_org,
        owner_org,
        event.provider_event_id,
        span.trace_id,
    )
    webhook_cross_org_mismatches.add(1, kind=kind)
    raise Forbidden("The purchase does not belong to this organization", code="WEBHOOK_CROSS_ORG")
