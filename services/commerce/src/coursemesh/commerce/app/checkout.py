"""Checkout of a course or a custom course offer: load the facts through a store, decide
(``domain.checkout``), save the outcome through the same store, open the payment when it is
paid.

A course checkout without an ``Idempotency-Key`` first tries the fast store, which writes only
a new free entitlement (one read statement, one write statement); any other outcome, and a
fast write that lost a race to a concurrent checkout of the same buyer, goes to the
transactional store, through the same decision.

One open payment per entitlement: a checkout that reopens a pending (or revoked) entitlement
first expires, at the provider, the payment still open for it and marks it ``superseded``; when
the provider reports that payment paid meanwhile, the checkout opens nothing and answers 409
``PREVIOUS_PAYMENT_COMPLETED`` (the provider's webhook activates the entitlement); when the
provider fails, 502 ``PAYMENT_PROVIDER_UNAVAILABLE``, and the transaction rolls back.

A paid checkout charges on the seller's connected account (409 ``PAYMENTS_NOT_ENABLED`` while
the seller cannot take charges) and sends the buyer back to the checkout's ``successUrl`` /
``cancelUrl`` when its organization's allowlist admits them, else to the platform's own pages.
Return URLs make a course checkout transactional (the fast store writes no payment, and the
URLs are checked even when the course turns out free), and so does a coupon: the checkout
locks the coupon, counts its uses against its caps, charges the price after it (or opens the
entitlement at once when nothing is left to pay) and records the use with the payment it
discounts (``app.coupons``, ``domain.coupons``)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

from coursemesh.chassis.errors import NotFound, Unprocessable
from coursemesh.commerce.app.coupons import apply_coupon
from coursemesh.commerce.app.ports import (
    META_BUNDLE_PURCHASE,
    META_ENTITLEMENT,
    META_GIFT,
    META_PURCHASE,
    META_TRANSACTION,
    CheckoutStore,
    CheckoutTransaction,
    CheckoutWrite,
    CouponUse,
    HostedPaymentRequest,
    PaymentDraft,
    PaymentProvider,
    TransactionalCheckoutStore,
)
from coursemesh.commerce.domain.accounts import PaymentAccount, chargeable, platform_fee
from coursemesh.commerce.domain.checkout import (
    Buyer,
    Charge,
    CourseFacts,
    Opening,
    PreviousPaymentCompleted,
    Refused,
    decide_course_checkout,
    idempotency_fingerprint,
    lead_link,
)
from coursemesh.commerce.domain.coupons import CouponRefused, Quote
from coursemesh.commerce.domain.events import custom_course_purchased
from coursemesh.commerce.domain.gifts import Gift, gift_charge, gift_recipient
from coursemesh.commerce.domain.payments import payments_to_supersede
from coursemesh.commerce.domain.pricing import is_free
from coursemesh.commerce.domain.return_urls import ReturnUrls, return_urls


@dataclass(frozen=True, slots=True)
class ReturnRequest:
    """The return URLs a checkout asked for (None: the platform's own page)."""

    success_url: str | None = None
    cancel_url: str | None = None

    def fingerprint(self) -> str:
        return f"|{self.success_url or ''}|{self.cancel_url or ''}"


NO_RETURN = ReturnRequest()

#: Prices a course checkout's opening: the quote after the buyer's coupon.
PriceRule = Callable[[CourseFacts], Awaitable[Quote]]


class CheckoutResponse(msgspec.Struct, rename="camel", omit_defaults=False):
    payment_page_url: str | None
    entitlement_id: uuid.UUID | None = None
    purchase_id: uuid.UUID | None = None
    # the payment's id, the ``session`` of the return pages (none when nothing is charged)
    payment_id: uuid.UUID | None = None
    # the gift a gift checkout created (``giftRecipientEmail``); none otherwise
    gift_id: uuid.UUID | None = None


def _now() -> datetime:
    return datetime.now(UTC)


class Checkout:
    """The checkout use cases, wired to their stores and the payment provider."""

    def __init__(
        self,
        *,
        fast: CheckoutStore,
        store: TransactionalCheckoutStore,
        provider: PaymentProvider,
        checkout_ttl: timedelta,
        public_base_url: str,
        platform_fee_bps: int = 0,
        clock: Callable[[], datetime] = _now,
        new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    ) -> None:
        self._fast = fast
        self._store = store
        self._provider = provider
        self._ttl = checkout_ttl
        self._public_base_url = public_base_url
        self._fee_bps = platform_fee_bps
        self._clock = clock
        self._new_id = new_id

    # --- course --------------------------------------------------------------------------

    async def course(
        self,
        course_id: uuid.UUID,
        buyer: Buyer,
        idempotency_key: str | None,
        returns: ReturnRequest = NO_RETURN,
        coupon_code: str | None = None,
    ) -> CheckoutResponse:
        now = self._clock()
        if idempotency_key is None and returns == NO_RETURN and coupon_code is None:
            async with self._fast.write() as write:
                opened = await self._open(write, course_id, buyer, now, again_if_lost=False)
            if opened is not None:
                return CheckoutResponse(payment_page_url=None, entitlement_id=opened.entitlement.id)
        async with self._store.write() as tx:

            async def run() -> CheckoutResponse:
                return await self._course_in(tx, course_id, buyer, now, returns, coupon_code)

            coupon = () if coupon_code is None else (f"|coupon:{coupon_code.strip().upper()}",)
            fingerprint = checkout_fingerprint("course", course_id, returns, *coupon)
            return await answer_once(tx, buyer.user_id, idempotency_key, fingerprint, run)

    async def _open(
        self,
        write: CheckoutWrite,
        course_id: uuid.UUID,
        buyer: Buyer,
        now: datetime,
        *,
        again_if_lost: bool,
        price_rule: PriceRule | None = None,
    ) -> Opening | None:
        """Decide on the facts ``write`` reads and save the opening; a refusal raises. None:
        ``write`` does not write this opening, or lost a race and is not to decide again.
        ``price_rule``: the checkout names a coupon, applied once the course can be opened."""
        while True:
            facts = await write.course_facts(course_id, buyer.user_id)
            decide = functools.partial(
                decide_course_checkout,
                facts,
                buyer,
                course_id=course_id,
                now=now,
                new_id=self._new_id(),
                new_lead_id=self._new_id(),
            )
            decision = decide()
            if price_rule is not None and isinstance(decision, Opening):
                assert facts is not None
                decision = decide(quote=await price_rule(facts))
            if isinstance(decision, Refused):
                raise decision.error()
            if not write.accepts(decision):
                return None
            if decision.charge is not None:
                # the payment's id is chosen now, so the checkout's audit row can name it
                decision = decision.paid_with(self._new_id())
            if await write.save(decision, now) == "saved":
                return decision
            if not again_if_lost:
                return None

    async def _course_in(
        self,
        tx: CheckoutTransaction,
        course_id: uuid.UUID,
        buyer: Buyer,
        now: datetime,
        returns: ReturnRequest,
        coupon_code: str | None,
    ) -> CheckoutResponse:
        price_rule = None
        if coupon_code is not None:

            async def price_rule(facts: CourseFacts) -> Quote:
                assert facts.price_in_cents is not None
                return await apply_coupon(
                    coupon_code,
                    organization_id=facts.organization_id,
                    course_id=course_id,
                    price_in_cents=facts.price_in_cents,
                    currency=facts.currency or "",
                    user_id=buyer.user_id,
                    now=now,
                    find=tx.locked_coupon,
                    count=tx.coupon_usage,
                )

        # A transactional store writes every opening; a lost insert is decided again on the
        # row that won, which the second read locks.
        opened = await self._open(
            tx, course_id, buyer, now, again_if_lost=True, price_rule=price_rule
        )
        assert opened is not None
        await self._record_coupon_use(tx, opened, buyer)
        org = opened.entitlement.organization_id
        urls = await self._return_urls(tx, org, returns)
        # before anything reaches the provider: a seller who cannot be paid expires nothing
        account = None if opened.charge is None else await self._account(tx, org)
        ent_id = opened.entitlement.id
        transaction_id = opened.transition.payment_transaction_id
        if opened.kind in ("reopen", "renew"):
            await self._supersede_open_payments(tx, ent_id, buyer, transaction_id, now)
        if opened.charge is None:
            return CheckoutResponse(payment_page_url=None, entitlement_id=ent_id)
        assert transaction_id is not None
        assert account is not None
        url = await self._open_payment(
            tx,
            account=account,
            organization_id=org,
            buyer=buyer,
            charge=opened.charge,
            entitlement_id=ent_id,
            now=now,
            transaction_id=transaction_id,
            urls=urls,
        )
        return CheckoutResponse(
            payment_page_url=url, entitlement_id=ent_id, payment_id=transaction_id
        )

    async def _record_coupon_use(
        self, tx: CheckoutTransaction, opened: Opening, buyer: Buyer
    ) -> None:
        quote = opened.quote
        if quote is None or quote.coupon is None:
            return
        await tx.add_coupon_use(
            CouponUse(
                id=self._new_id(),
                coupon_id=quote.coupon.id,
                user_id=buyer.user_id,
                course_id=opened.entitlement.course_id,
                entitlement_id=opened.entitlement.id,
                payment_transaction_id=(
                    None if opened.charge is None else opened.transition.payment_transaction_id
                ),
                price_in_cents=quote.price_in_cents,
                discount_in_cents=quote.discount_in_cents,
                currency=quote.currency,
            )
        )

    async def _account(self, tx: CheckoutTransaction, organization_id: uuid.UUID) -> PaymentAccount:
        return chargeable(await tx.payment_account(organization_id), self._provider.name)

    async def _return_urls(
        self, tx: CheckoutTransaction, organization_id: uuid.UUID, returns: ReturnRequest
    ) -> ReturnUrls:
        allowlist = () if returns == NO_RETURN else await tx.return_allowlist(organization_id)
        return return_urls(
            returns.success_url,
            returns.cancel_url,
            allowlist=allowlist,
            public_base_url=self._public_base_url,
        )

    async def _supersede_open_payments(
        self,
        tx: CheckoutTransaction,
        entitlement_id: uuid.UUID,
        buyer: Buyer,
        superseded_by: uuid.UUID | None,
        now: datetime,
    ) -> None:
        """End the payments still open for the entitlement (its row is locked by the facts'
        read): expire each at the provider, then mark it superseded. A payment the provider
        reports paid refuses the checkout (nothing is written: the transaction rolls back)."""
        for payment in payments_to_supersede(await tx.entitlement_payments(entitlement_id)):
            # A payment of another provider (the setting changed since) cannot be reached from
            # here; it is still marked superseded, so a late completion of it is refunded.
            if payment.provider_transaction_id and payment.provider == self._provider.name:
                outcome = await self._provider.expire_hosted_payment(
                    tx.transaction, payment.provider_transaction_id, payment.provider_account_id
                )
                if outcome == "completed":
                    raise PreviousPaymentCompleted(
                        "Your previous payment for this course has completed; access follows as"
                        " soon as the payment provider confirms it"
                    )
            await tx.supersede_payment(payment, superseded_by, buyer.user_id, now)

    # --- custom course offer -------------------------------------------------------------

    async def offer(
        self,
        code: str,
        buyer: Buyer,
        idempotency_key: str | None,
        returns: ReturnRequest = NO_RETURN,
    ) -> CheckoutResponse:
        now = self._clock()
        async with self._store.write() as tx:

            async def run() -> CheckoutResponse:
                return await self._offer_in(tx, code, buyer, now, returns)

            fingerprint = checkout_fingerprint("offer", code, returns)
            return await answer_once(tx, buyer.user_id, idempotency_key, fingerprint, run)

    async def _offer_in(
        self,
        tx: CheckoutTransaction,
        code: str,
        buyer: Buyer,
        now: datetime,
        returns: ReturnRequest,
    ) -> CheckoutResponse:
        offer = await tx.offer(code)
        if offer is None:
            raise NotFound("No such custom course offer", code="OFFER_NOT_FOUND")
        urls = await self._return_urls(tx, offer.organization_id, returns)
        free = is_free(offer.price_in_cents)
        account = None if free else await self._account(tx, offer.organization_id)
        standing = await tx.buyer_standing(offer.organization_id, buyer.user_id)
        lead = lead_link(
            organization_id=offer.organization_id,
            buyer=buyer,
            source="custom_course_purchase",
            membership_id=standing.membership_id,
            lead_id=standing.lead_id,
            linked=standing.linked,
            new_lead_id=self._new_id(),
        )
        if lead is not None:
            await tx.save_lead(lead, now)
        purchase_id = self._new_id()
        await tx.add_purchase(purchase_id, offer, buyer.user_id, "paid" if free else "pending")
        if free:
            tx.transaction.publish(
                custom_course_purchased(offer, purchase_id, buyer.user_id, None, now),
                aggregate_id=purchase_id,
                aggregate_version=1,
            )
            return CheckoutResponse(payment_page_url=None, purchase_id=purchase_id)
        assert account is not None
        payment_id = self._new_id()
        url = await self._open_payment(
            tx,
            account=account,
            organization_id=offer.organization_id,
            buyer=buyer,
            charge=Charge(offer.price_in_cents, offer.currency, offer.title),
            purchase_id=purchase_id,
            now=now,
            urls=urls,
            transaction_id=payment_id,
        )
        return CheckoutResponse(
            payment_page_url=url, purchase_id=purchase_id, payment_id=payment_id
        )

    # --- the payment ---------------------------------------------------------------------

    async def _open_payment(
        self,
        tx: CheckoutTransaction,
        *,
        account: PaymentAccount,
        organization_id: uuid.UUID,
        buyer: Buyer,
        charge: Charge,
        entitlement_id: uuid.UUID | None = None,
        purchase_id: uuid.UUID | None = None,
        now: datetime,
        urls: ReturnUrls,
        transaction_id: uuid.UUID | None = None,
        gift_id: uuid.UUID | None = None,
        bundle_purchase_id: uuid.UUID | None = None,
    ) -> str:
        """A payment row and a hosted payment on the seller's connected account; returns the
        page URL."""
        if transaction_id is None:
            transaction_id = self._new_id()
        metadata = {META_TRANSACTION: str(transaction_id)}
        if entitlement_id is not None:
            metadata[META_ENTITLEMENT] = str(entitlement_id)
        if purchase_id is not None:
            metadata[META_PURCHASE] = str(purchase_id)
        if gift_id is not None:
            metadata[META_GIFT] = str(gift_id)
        if bundle_purchase_id is not None:
            metadata[META_BUNDLE_PURCHASE] = str(bundle_purchase_id)
        await tx.add_payment(
            PaymentDraft(
                id=transaction_id,
                organization_id=organization_id,
                user_id=buyer.user_id,
                entitlement_id=entitlement_id,
                custom_course_purchase_id=purchase_id,
                amount_in_cents=charge.amount_in_cents,
                currency=charge.currency,
                provider=self._provider.name,
                metadata=metadata,
                buyer_email=buyer.email,
                description=charge.description,
                provider_account_id=account.account_id,
                refund_window_days=charge.refund_window_days,
                access_days=charge.access_days,
                renewal=charge.renewal,
                bundle_purchase_id=bundle_purchase_id,
            )
        )
        seller = await tx.seller(organization_id)
        success_url, cancel_url = urls.for_payment(self._public_base_url, transaction_id)
        hosted = await self._provider.create_hosted_payment(
            tx.transaction,
            HostedPaymentRequest(
                transaction_id=transaction_id,
                organization_id=organization_id,
                account_id=account.account_id,
                seller_name=seller.name if seller else "",
                seller_logo_url=seller.logo_url if seller else None,
                description=charge.description,
                amount_in_cents=charge.amount_in_cents,
                currency=charge.currency,
                application_fee_in_cents=platform_fee(charge.amount_in_cents, self._fee_bps),
                buyer_email=buyer.email,
                metadata=metadata,
                expires_at=now + self._ttl,
                success_url=success_url,
                cancel_url=cancel_url,
            ),
        )
        await tx.set_provider_transaction(
            transaction_id, hosted.provider_transaction_id, hosted.payment_page_url
        )
        return hosted.payment_page_url

    # --- a gift of a course --------------------------------------------------------------

    async def gift(
        self,
        course_id: uuid.UUID,
        payer: Buyer,
        recipient_email: str,
        idempotency_key: str | None,
        returns: ReturnRequest = NO_RETURN,
        coupon_code: str | None = None,
    ) -> CheckoutResponse:
        """A course bought for ``recipient_email``: a pending gift and its payment, no
        entitlement for anyone (the recipient's comes with the claim, ``app.gifts``). Always
        transactional; the recipient is part of the ``Idempotency-Key``'s request."""
        recipient = gift_recipient(recipient_email)
        if coupon_code is not None:
            raise CouponRefused("Coupons apply to course checkouts, not to gifts")
        now = self._clock()
        async with self._store.write() as tx:

            async def run() -> CheckoutResponse:
                return await self._gift_in(tx, course_id, payer, recipient, now, returns)

            fingerprint = checkout_fingerprint("course", course_id, returns, f"|gift:{recipient}")
            return await answer_once(tx, payer.user_id, idempotency_key, fingerprint, run)

    async def _gift_in(
        self,
        tx: CheckoutTransaction,
        course_id: uuid.UUID,
        payer: Buyer,
        recipient: str,
        now: datetime,
        returns: ReturnRequest,
    ) -> CheckoutResponse:
        facts = await tx.course_facts(course_id, payer.user_id)
        charge = gift_charge(facts)
        assert facts is not None
        org = facts.organization_id
        urls = await self._return_urls(tx, org, returns)
        account = await self._account(tx, org)
        lead = lead_link(
            organization_id=org,
            buyer=payer,
            source="course_purchase",
            membership_id=facts.membership_id,
            lead_id=facts.lead_id,
            linked=facts.linked,
            new_lead_id=self._new_id(),
        )
        if lead is not None:
            await tx.save_lead(lead, now)
        gift_id, payment_id = self._new_id(), self._new_id()
        await tx.add_gift(
            Gift(
                id=gift_id,
                organization_id=org,
                course_id=course_id,
                course_name=facts.name or "Course",
                payer_user_id=payer.user_id,
                payer_email=payer.email,
                recipient_email=recipient,
                status="pending",
                payment_transaction_id=payment_id,
                created_at=now,
                access_days=facts.access_days,
            )
        )
        url = await self._open_payment(
            tx,
            account=account,
            organization_id=org,
            buyer=payer,
            charge=charge,
            now=now,
            urls=urls,
            transaction_id=payment_id,
            gift_id=gift_id,
        )
        return CheckoutResponse(payment_page_url=url, payment_id=payment_id, gift_id=gift_id)


def checkout_fingerprint(
    kind: Literal["course", "offer", "bundle"],
    subject: object,
    returns: ReturnRequest,
    *qualifiers: str,
) -> str:
    """What a checkout's ``Idempotency-Key`` is bound to: the thing bought, the return
    addresses when given, then what else shapes the answer (a coupon, a gift's recipient)."""
    fingerprint = idempotency_fingerprint(kind, subject)
    if returns != NO_RETURN:
        fingerprint += returns.fingerprint()
    return fingerprint + "".join(qualifiers)


async def answer_once(
    tx: CheckoutTransaction,
    user_id: str,
    key: str | None,
    fingerprint: str,
    run: Callable[[], Awaitable[CheckoutResponse]],
    answer_type: type[CheckoutResponse] = CheckoutResponse,
) -> CheckoutResponse:
    """With an ``Idempotency-Key``, the first response is stored with the effects it describes
    (one transaction) and returned again for every retry; the key's lock makes a concurrent
    retry wait for the first to finish. The same key for another request is refused."""
    if key is None:
        return await run()
    stored = await tx.stored_answer(user_id, key)
    if stored is not None:
        if stored.fingerprint != fingerprint:
            raise Unprocessable(
                "This Idempotency-Key was used for another request", code="IDEMPOTENCY_KEY_REUSED"
            )
        return msgspec.convert(stored.response, answer_type)
    response = await run()
    await tx.store_answer(user_id, key, fingerprint, msgspec.to_builtins(response))
    return response
