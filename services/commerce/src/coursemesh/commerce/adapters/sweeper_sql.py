"""The checkout sweeper's store: a batch of expired pending checkouts per driver transaction."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from coursemesh.chassis.db import Database
from coursemesh.chassis.transaction import Driver, Transaction
from coursemesh.commerce.adapters import gifts_sql
from coursemesh.commerce.adapters.checkout_sql import (
    BUNDLE_PAYMENTS_OF,
    PAYMENT_COLUMNS,
    audit_payment,
    payment_of,
)
from coursemesh.commerce.adapters.entitlements_sql import (
    COLUMNS,
    DriverEntitlements,
    entitlement_of,
)
from coursemesh.commerce.app.ports import PendingCheckout
from coursemesh.commerce.domain.gifts import Gift
from coursemesh.commerce.domain.payments import Payment

# Each with the payment still open for it (the newest, should there be more than one; a bundle
# purchase's payment included), so the expiry's audit row names it.
_CLAIM = f"""
SELECT {COLUMNS},
       (SELECT p.id FROM payment_transactions p
         WHERE (p.entitlement_id = e.id OR p.id IN ({BUNDLE_PAYMENTS_OF.replace("$1", "e.id")}))
           AND p.status = 'pending'
         ORDER BY p.created_at DESC LIMIT 1) AS open_payment_id
FROM course_entitlements e
WHERE status = 'pending' AND status_changed_at < $1
ORDER BY status_changed_at
LIMIT $2
FOR UPDATE OF e SKIP LOCKED
"""


# Open payments past the checkout's TTL that no pending entitlement waits for: a renewal's (its
# access goes on) or a gift's (no entitlement until claimed). The partial index
# ix_payment_transactions_pending_created holds the open payments only.
_CLAIM_PAYMENTS = f"""
SELECT {PAYMENT_COLUMNS} FROM payment_transactions p
WHERE status = 'pending' AND created_at < $1
  AND (renewal OR EXISTS (SELECT 1 FROM gifts g WHERE g.payment_transaction_id = p.id))
ORDER BY created_at
LIMIT $2
FOR UPDATE OF p SKIP LOCKED
"""
_END_PAYMENT = "UPDATE payment_transactions SET status = $2, version = version + 1 WHERE id = $1"


class DriverSweeperBatch:
    def __init__(self, tx: Transaction, driver: Driver) -> None:
        self._driver = driver
        self.entitlements = DriverEntitlements(tx)

    async def claim_pending(
        self, changed_before: datetime, limit: int
    ) -> Sequence[PendingCheckout]:
        rows = await self._driver.fetch(_CLAIM, changed_before, limit)
        return [PendingCheckout(entitlement_of(r), r["open_payment_id"]) for r in rows]

    async def claim_abandoned_payments(
        self, opened_before: datetime, limit: int
    ) -> Sequence[Payment]:
        rows = await self._driver.fetch(_CLAIM_PAYMENTS, opened_before, limit)
        return [payment_of(r) for r in rows]

    async def end_payment(
        self, payment: Payment, status: str, *, actor: str, now: datetime
    ) -> None:
        await self._driver.execute(_END_PAYMENT, payment.id, status)
        await audit_payment(
            self._driver,
            payment.id,
            from_status=payment.status,
            to_status=status,
            cause="checkout_expired",
            actor=actor,
            reason=None,
            at=now,
        )

    async def lock_gift_of(self, payment_id: uuid.UUID) -> Gift | None:
        return await gifts_sql.lock(self._driver, None, payment_id)

    async def save_gift(self, gift: Gift) -> None:
        await gifts_sql.save(self._driver, gift)


class DriverSweeperStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DriverSweeperBatch]:
        async with self._db.driver_unit_of_work() as tx:
            yield DriverSweeperBatch(tx, await tx.driver())
