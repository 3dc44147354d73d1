"""The time-limited access worker's store: batches of ended and soon-ending accesses per driver
transaction (the partial index ``ix_entitlements_access_ends`` holds only active accesses with
an end)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from coursemesh.chassis.db import Database
from coursemesh.chassis.transaction import Driver, Record, Transaction
from coursemesh.commerce.adapters.entitlements_sql import (
    COLUMNS,
    DriverEntitlements,
    entitlement_of,
)
from coursemesh.commerce.domain.access import EndingAccess, ExpiryNotice
from coursemesh.commerce.domain.entitlements import Entitlement
from coursemesh.commerce.domain.payments import Seller

_ACTIVE_WITH_END = "status = 'active' AND access_ends_at IS NOT NULL"
_CLAIM_ENDED = f"""
SELECT {COLUMNS} FROM course_entitlements
WHERE {_ACTIVE_WITH_END} AND access_ends_at <= $1
ORDER BY access_ends_at
LIMIT $2
FOR UPDATE SKIP LOCKED
"""
_CLAIM_ENDING = f"""
SELECT {", ".join(f"e.{c.strip()}" for c in COLUMNS.split(","))},
       coalesce(c.name, 'your course') AS course_name, o.name AS seller_name, o.logo_url
FROM course_entitlements e
LEFT JOIN courses c ON c.id = e.course_id
LEFT JOIN organizations o ON o.id = e.organization_id
WHERE e.{_ACTIVE_WITH_END} AND e.access_ends_at > $1 AND e.access_ends_at <= $2
  AND e.expiry_notice_for IS DISTINCT FROM e.access_ends_at
ORDER BY e.access_ends_at
LIMIT $3
FOR UPDATE OF e SKIP LOCKED
"""
_QUEUE_NOTICE = """
INSERT INTO receipts (transaction_id, email, subject, body, user_id)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (transaction_id) DO NOTHING
"""
_MARK_NOTICE = "UPDATE course_entitlements SET expiry_notice_for = $2 WHERE id = $1"


def _seller(row: Record) -> Seller | None:
    return None if row["seller_name"] is None else Seller(row["seller_name"], row["logo_url"])


class DriverAccessExpiryBatch:
    def __init__(self, tx: Transaction, driver: Driver, wake: Callable[[], None]) -> None:
        self._tx = tx
        self._driver = driver
        self._wake = wake
        self.entitlements = DriverEntitlements(tx)

    async def claim_ended(self, now: datetime, limit: int) -> Sequence[Entitlement]:
        return [entitlement_of(r) for r in await self._driver.fetch(_CLAIM_ENDED, now, limit)]

    async def claim_ending(
        self, now: datetime, until: datetime, limit: int
    ) -> Sequence[EndingAccess]:
        rows = await self._driver.fetch(_CLAIM_ENDING, now, until, limit)
        return [
            EndingAccess(
                entitlement=entitlement_of(r),
                course_name=r["course_name"],
                seller=None
                if r["seller_name"] is None
                else Seller(r["seller_name"], r["logo_url"]),
            )
            for r in rows
        ]

    async def queue_notice(self, notice: ExpiryNotice) -> None:
        await self._driver.execute(
            _QUEUE_NOTICE, notice.id, notice.email, notice.subject, notice.body, notice.user_id
        )
        await self._driver.execute(_MARK_NOTICE, notice.entitlement_id, notice.ends_at)
        self._tx.after_commit(self._wake)


class DriverAccessExpiryStore:
    def __init__(self, db: Database, wake: Callable[[], None]) -> None:
        self._db = db
        self._wake = wake

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DriverAccessExpiryBatch]:
        async with self._db.driver_unit_of_work() as tx:
            yield DriverAccessExpiryBatch(tx, await tx.driver(), self._wake)
