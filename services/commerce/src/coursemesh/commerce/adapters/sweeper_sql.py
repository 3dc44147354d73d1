"""The checkout sweeper's store: a batch of expired pending checkouts per driver transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from coursemesh.chassis.db import Database
from coursemesh.chassis.transaction import Driver, Transaction
from coursemesh.commerce.adapters.checkout_sql import BUNDLE_PAYMENTS_OF
from coursemesh.commerce.adapters.entitlements_sql import (
    COLUMNS,
    DriverEntitlements,
    entitlement_of,
)
from coursemesh.commerce.app.ports import PendingCheckout

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


class DriverSweeperBatch:
    def __init__(self, tx: Transaction, driver: Driver) -> None:
        self._driver = driver
        self.entitlements = DriverEntitlements(tx)

    async def claim_pending(
        self, changed_before: datetime, limit: int
    ) -> Sequence[PendingCheckout]:
        rows = await self._driver.fetch(_CLAIM, changed_before, limit)
        return [PendingCheckout(entitlement_of(r), r["open_payment_id"]) for r in rows]


class DriverSweeperStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DriverSweeperBatch]:
        async with self._db.driver_unit_of_work() as tx:
            yield DriverSweeperBatch(tx, await tx.driver())
