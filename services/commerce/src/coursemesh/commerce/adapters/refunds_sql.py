"""The buyer's refund request on the driver: their entitlement and its payment, locked."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from coursemesh.chassis.db import Database, DriverUnitOfWork
from coursemesh.chassis.transaction import Driver, Transaction
from coursemesh.commerce.adapters.checkout_sql import PAYMENT_COLUMNS, audit_payment, payment_of
from coursemesh.commerce.adapters.entitlements_sql import COLUMNS, entitlement_of
from coursemesh.commerce.domain.entitlements import Entitlement
from coursemesh.commerce.domain.payments import Payment
from coursemesh.commerce.domain.refunds import PaidAccess

_OWN = f"SELECT {COLUMNS} FROM course_entitlements WHERE user_id = $1 AND course_id = $2 FOR UPDATE"
_PAYMENT = f"""
SELECT {PAYMENT_COLUMNS}, completed_at, refund_window_days, refund_requested_at
FROM payment_transactions WHERE id = $1 FOR UPDATE
"""


class DriverRefundTransaction:
    def __init__(self, tx: DriverUnitOfWork, driver: Driver) -> None:
        self._tx = tx
        self._driver = driver

    @property
    def transaction(self) -> Transaction:
        return self._tx

    async def own_entitlement(self, user_id: str, course_id: uuid.UUID) -> Entitlement | None:
        row = await self._driver.fetchrow(_OWN, user_id, course_id)
        return None if row is None else entitlement_of(row)

    async def paid_access(self, payment_id: uuid.UUID) -> tuple[Payment, PaidAccess] | None:
        row = await self._driver.fetchrow(_PAYMENT, payment_id)
        if row is None:
            return None
        access = PaidAccess(
            status=row["status"],
            completed_at=row["completed_at"],
            refund_window_days=row["refund_window_days"],
            refund_requested_at=row["refund_requested_at"],
        )
        return payment_of(row), access

    async def mark_refund_requested(
        self, payment: Payment, actor: str, reason: str | None, at: datetime
    ) -> None:
        await self._driver.execute(
            "UPDATE payment_transactions SET refund_requested_at = $2 WHERE id = $1",
            payment.id,
            at,
        )
        await audit_payment(
            self._driver,
            payment.id,
            from_status=payment.status,
            to_status=payment.status,
            cause="refund_requested",
            actor=actor,
            reason=reason,
            at=at,
        )


class DriverRefundStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DriverRefundTransaction]:
        async with self._db.driver_unit_of_work() as tx:
            yield DriverRefundTransaction(tx, await tx.driver())
