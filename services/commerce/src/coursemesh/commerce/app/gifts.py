"""Gifted courses after their checkout (``Checkout.gift``): what the payment's webhook does to
the gift, the recipient's claim, the payer's list and resend.

The claim link carries a random token (``secrets.token_urlsafe(32)``); only its SHA-256 is
stored, and a resend replaces it, so the link mailed before stops working. A claim locks the
gift's row: of two claims of one link, the second waits and finds it claimed."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from coursemesh.commerce.app.ports import EntitlementRepository, GiftStore, PaymentLedger
from coursemesh.commerce.domain.entitlements import Entitlement, Transition, claim_gift
from coursemesh.commerce.domain.gifts import (
    Gift,
    claim_link,
    claim_mail,
    claim_refusal,
    claimed,
    gift_after_payment,
    resend_refusal,
    token_hash,
    with_token,
)
from coursemesh.commerce.domain.payments import (
    Outcome,
    Payment,
    PaymentEvent,
    Receipt,
    Seller,
    entitlement_after_payment,
)

#: Where a claim link points when ``GIFT_CLAIM_URL_TEMPLATE`` is unset (after the public base).
DEFAULT_CLAIM_PATH = "/gifts/{token}"


def new_claim_token() -> str:
    return secrets.token_urlsafe(32)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ClaimLinks:
    """How claim links are made and mailed: the URL template (``{token}`` in it), the token
    source, and the mail ids."""

    template: str
    new_token: Callable[[], str] = new_claim_token
    new_id: Callable[[], uuid.UUID] = uuid.uuid4

    def issue(self, gift: Gift, seller: Seller | None, now: datetime) -> tuple[Gift, Receipt]:
        """The gift with a new token, and the recipient's mail with the link to it."""
        token = self.new_token()
        mail = claim_mail(
            gift, claim_link(self.template, token), seller.name if seller else None, self.new_id()
        )
        return with_token(gift, token, now), mail


async def apply_gift_outcome(
    ledger: PaymentLedger,
    gift: Gift,
    payment: Payment,
    event: PaymentEvent,
    now: datetime,
    links: ClaimLinks,
) -> bool:
    """The gift after its payment's verified outcome (the payment itself already settled):
    paid -> a claim token and the recipient's mail; failed/expired -> ended; refund or dispute
    -> cancelled before the claim, the claimer's access revoked after it. True: a mail was
    queued."""
    outcome: Outcome = event.outcome or "failed"
    step = gift_after_payment(gift.status, outcome)
    if step is None:
        return False
    if step == "paid":
        issued, mail = links.issue(gift, await ledger.seller(gift.organization_id), now)
        await ledger.save_gift(issued)
        await ledger.queue_receipt(mail)
        return True
    if step == "refunded" and gift.entitlement_id is not None:
        await _revoke_claimed(ledger.entitlements, gift.entitlement_id, payment, event, now)
    await ledger.save_gift(replace(gift, status=step))
    return False


async def _revoke_claimed(
    entitlements: EntitlementRepository,
    entitlement_id: uuid.UUID,
    payment: Payment,
    event: PaymentEvent,
    now: datetime,
) -> None:
    ent = await entitlements.lock(entitlement_id)
    if ent is None:
        return
    # only the row this payment activated (a later purchase of the claimer's own stays)
    effect = entitlement_after_payment(ent, payment, event, now)
    if isinstance(effect, Transition):
        await entitlements.save(effect)


@dataclass(frozen=True, slots=True)
class Claimed:
    gift: Gift
    entitlement: Entitlement


class Gifts:
    """The recipient's claim and the payer's gifts."""

    def __init__(
        self,
        store: GiftStore,
        links: ClaimLinks,
        *,
        nudge_mail: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = _now,
        new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    ) -> None:
        self._store = store
        self._links = links
        self._nudge_mail = nudge_mail
        self._clock = clock
        self._new_id = new_id

    async def claim(self, token: str, user_id: str) -> Claimed:
        """The gift's course for ``user_id``: a new (or their revoked) entitlement, active,
        audited ``gift_claimed`` with the claimer as actor. Every refusal changes nothing."""
        now = self._clock()
        async with self._store.transaction() as tx:
            gift = await tx.lock_by_token(token_hash(token))
            while True:
                existing = (
                    None if gift is None else await tx.user_entitlement(user_id, gift.course_id)
                )
                refusal = claim_refusal(gift, user_id, existing)
                if refusal is not None:
                    raise refusal
                assert gift is not None
                t = claim_gift(
                    existing,
                    new_id=self._new_id(),
                    user_id=user_id,
                    course_id=gift.course_id,
                    organization_id=gift.organization_id,
                    membership_id=await tx.membership_id(gift.organization_id, user_id),
                    gift_id=gift.id,
                    payment_id=gift.payment_transaction_id,
                    now=now,
                    access_days=gift.access_days,
                )
                if existing is not None:
                    await tx.entitlements.save(t)
                    break
                # a checkout of the same user that inserted meanwhile: decided again on its row
                if await tx.add_entitlement(t):
                    break
            done = claimed(gift, t.entitlement.id, user_id, now)
            await tx.save_gift(done)
            return Claimed(done, t.entitlement)

    async def mine(self, payer_id: str, offset: int, limit: int) -> tuple[Sequence[Gift], int]:
        async with self._store.transaction() as tx:
            return await tx.payer_gifts(payer_id, offset, limit)

    async def resend(self, gift_id: uuid.UUID, payer_id: str) -> Gift:
        """Mail the claim link again with a new token (the old link stops working); only the
        payer's own paid, unclaimed gift (another payer's is not found)."""
        now = self._clock()
        async with self._store.transaction() as tx:
            gift = await tx.lock_own(gift_id, payer_id)
            refusal = resend_refusal(gift)
            if refusal is not None:
                raise refusal
            assert gift is not None
            issued, mail = self._links.issue(gift, await tx.seller(gift.organization_id), now)
            await tx.save_gift(issued)
            await tx.queue_mail(mail)
            tx.transaction.after_commit(self._nudge_mail)
            return issued
