"""The access history's store: one driver transaction per query, as the other staff reads
(``staff_sql``), the staff check on the ``memberships`` projection in it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from coursemesh.chassis.db import Database
from coursemesh.chassis.memberships import DriverStaffDirectory
from coursemesh.chassis.transaction import Driver
from coursemesh.commerce.adapters.entitlements_sql import COLUMNS, entitlement_of
from coursemesh.commerce.domain.entitlements import Entitlement
from coursemesh.commerce.domain.history import LinkedPayment, RecordedStep

_IN_ORG = f"SELECT {COLUMNS} FROM course_entitlements WHERE id = $1 AND organization_id = $2"
_OWN = f"SELECT {COLUMNS} FROM course_entitlements WHERE user_id = $1 AND course_id = $2"
# The identity column orders the steps as they were written: the steps of one entitlement are
# written under its row lock, one after the other, while ``at`` comes from each writer's clock.
_STEPS = """
SELECT t.at, t.from_status, t.to_status, t.cause, t.actor, t.reason, t.payment_transaction_id,
       p.status AS payment_status, p.amount_in_cents, p.currency
FROM entitlement_transitions t
LEFT JOIN payment_transactions p ON p.id = t.payment_transaction_id
WHERE t.entitlement_id = $1
ORDER BY t.id
LIMIT $2 OFFSET $3
"""
_COUNT = "SELECT count(*) FROM entitlement_transitions WHERE entitlement_id = $1"


class DriverHistoryReader:
    def __init__(self, driver: Driver) -> None:
        self._driver = driver
        self.directory = DriverStaffDirectory(driver)

    async def entitlement_in(
        self, organization_id: uuid.UUID, entitlement_id: uuid.UUID
    ) -> Entitlement | None:
        row = await self._driver.fetchrow(_IN_ORG, entitlement_id, organization_id)
        return None if row is None else entitlement_of(row)

    async def own_entitlement(self, user_id: str, course_id: uuid.UUID) -> Entitlement | None:
        row = await self._driver.fetchrow(_OWN, user_id, course_id)
        return None if row is None else entitlement_of(row)

    async def steps(
        self, entitlement_id: uuid.UUID, limit: int, offset: int
    ) -> tuple[Sequence[RecordedStep], int]:
        total = await self._driver.fetchval(_COUNT, entitlement_id)
        rows = await self._driver.fetch(_STEPS, entitlement_id, limit, offset)
        steps = [
            RecordedStep(
                at=r["at"],
                from_status=r["from_status"],
                to_status=r["to_status"],
                cause=r["cause"],
                actor=r["actor"],
                reason=r["reason"],
                payment=None
                if r["payment_transaction_id"] is None
                else LinkedPayment(
                    id=r["payment_transaction_id"],
                    status=r["payment_status"],
                    amount_in_cents=r["amount_in_cents"],
                    currency=r["currency"],
                ),
            )
            for r in rows
        ]
        return steps, int(total)


class DriverHistoryStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[DriverHistoryReader]:
        async with self._db.driver_unit_of_work() as tx:
            yield DriverHistoryReader(await tx.driver())
