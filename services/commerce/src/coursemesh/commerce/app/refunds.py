"""A buyer asks for their money back: inside the refund window of the plan they bought, the
refund is asked of the payment provider at once, in the request's transaction; the
provider's ``payment.refunded`` webhook then revokes the entitlement (cause
``payment_refunded``), as for any refund. Asking again answers the first request."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from coursemesh.commerce.app.history import EntitlementNotFound
from coursemesh.commerce.app.ports import PaymentProvider, RefundRequest, RefundStore
from coursemesh.commerce.domain.entitlements import user_actor
from coursemesh.commerce.domain.refunds import NothingToRefund, decide_refund, window_closes_at


@dataclass(frozen=True, slots=True)
class RefundRequested:
    payment_id: uuid.UUID
    amount_in_cents: int
    currency: str
    requested_at: datetime
    window_closes_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC)


class Refunds:
    def __init__(
        self,
        store: RefundStore,
        provider: PaymentProvider,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._store = store
        self._provider = provider
        self._clock = clock

    async def request(
        self, user_id: str, course_id: uuid.UUID, reason: str | None
    ) -> RefundRequested:
        now = self._clock()
        async with self._store.transaction() as tx:
            entitlement = await tx.own_entitlement(user_id, course_id)
            if entitlement is None:
                raise EntitlementNotFound("You hold no entitlement to this course")
            source = entitlement.source_payment_transaction_id
            found = None if source is None else await tx.paid_access(source)
            if found is not None and found[0].user_id != user_id:
                raise NothingToRefund("You did not pay for this course")
            decision = decide_refund(entitlement, None if found is None else found[1], now)
            assert found is not None
            payment, access = found
            if decision == "already_requested":
                assert access.refund_requested_at is not None
                requested_at = access.refund_requested_at
            else:
                await self._provider.refund_payment(
                    tx.transaction,
                    RefundRequest(
                        transaction_id=payment.id,
                        account_id=payment.provider_account_id,
                        provider_transaction_id=payment.provider_transaction_id,
                        provider_payment_id=payment.provider_payment_id,
                        amount_in_cents=payment.amount_in_cents,
                        currency=payment.currency,
                        reason="requested_by_customer",
                    ),
                )
                await tx.mark_refund_requested(payment, user_actor(user_id), reason, now)
                requested_at = now
            return RefundRequested(
                payment_id=payment.id,
                amount_in_cents=payment.amount_in_cents,
                currency=payment.currency,
                requested_at=requested_at,
                window_closes_at=window_closes_at(access),
            )
