"""The checkout sweeper's store: a batch of expired pending checkouts per driver transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from coursemesh.chassis.db import Database
from coursemesh.chassis.transaction import Driver, Transaction
from coursemesh.commerce.adapters.entitlements_sql import (
    COLUMNS,
    DriverEntitlements,
    entitlement_of,
)
from coursemesh.commerce.domain.entitlements import Entitlement

_CLAIM = f"""
SELECT {COLUMNS} FROM course_entitlements
WHERE status = 'pending' AND status_changed_at < $1
ORDER BY status_changed_at
LIMIT $2
FOR UPDATE SKIP LOCKED
"""


class DriverSweeperBatch:
    def __init__(self, tx: Transaction, driver: Driver) -> None:
        self._driver = driver
        self.entitlements = DriverEntitlements(tx)

    async def claim_pending(self, changed_before: datetime, limit: int) -> Sequence[Entitlement]:
        return [entitlement_of(r) for r in await self._driver.fetch(_CLAIM, changed_before, limit)]


class DriverSweeperStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DriverSweeperBatch]:
        async with self._db.driver_unit_of_work() as tx:
            yield DriverSweeperBatch(tx, await tx.driver())
