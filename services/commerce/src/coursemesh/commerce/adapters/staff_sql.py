"""The staff use cases' store: one driver transaction per request, the staff check on the
``memberships`` projection in it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from coursemesh.chassis.db import Database
from coursemesh.chassis.memberships import DriverStaffDirectory
from coursemesh.chassis.transaction import Driver, Transaction
from coursemesh.commerce.adapters import bulk_grants_sql, entitlements_sql
from coursemesh.commerce.adapters.entitlements_sql import (
    COLUMNS,
    DriverEntitlements,
    entitlement_of,
)
from coursemesh.commerce.app.ports import LeadEntry, Plan, PlanDraft
from coursemesh.commerce.domain.bulk_grants import BulkJob, GrantRow, RowResult
from coursemesh.commerce.domain.checkout import Offer
from coursemesh.commerce.domain.entitlements import Entitlement, Transition
from coursemesh.commerce.domain.events import transition_events

_USER_ENTITLEMENT = (
    f"SELECT {COLUMNS} FROM course_entitlements WHERE user_id = $1 AND course_id = $2 FOR UPDATE"
)
_UPSERT_PLAN = """
INSERT INTO plans (id, course_id, type, organization_id, price_in_cents, currency, is_active,
                   version, refund_window_days, access_days)
VALUES ($1, $2, 'course', $3, $4, $5, $6, 1, $7, $9)
ON CONFLICT (course_id, type) DO UPDATE
   SET price_in_cents = EXCLUDED.price_in_cents, currency = EXCLUDED.currency,
       is_active = EXCLUDED.is_active, version = plans.version + 1,
       refund_window_days = CASE WHEN $8 THEN plans.refund_window_days
                                 ELSE EXCLUDED.refund_window_days END,
       access_days = CASE WHEN $10 THEN plans.access_days ELSE EXCLUDED.access_days END
RETURNING id, course_id, organization_id, price_in_cents, currency, is_active, version,
          refund_window_days, access_days
"""
_ADD_OFFER = """
INSERT INTO custom_course_offers (id, organization_id, code, title, price_in_cents, currency)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (code) DO NOTHING
RETURNING id
"""
_ENTITLEMENTS = f"""
SELECT {COLUMNS}
FROM course_entitlements
WHERE organization_id = $1 AND course_id = $2
ORDER BY created_at, id
LIMIT $3 OFFSET $4
"""
_COUNT_ENTITLEMENTS = (
    "SELECT count(*) FROM course_entitlements WHERE organization_id = $1 AND course_id = $2"
)
_LEADS = """
SELECT l.id, l.user_id, l.email, ol.source, ol.membership_id, ol.created_at
FROM organization_leads ol
JOIN leads l ON l.id = ol.lead_id
WHERE ol.organization_id = $1
ORDER BY ol.created_at, l.id
LIMIT $2 OFFSET $3
"""
_COUNT_LEADS = "SELECT count(*) FROM organization_leads WHERE organization_id = $1"


class DriverStaffTransaction:
    def __init__(self, tx: Transaction, driver: Driver) -> None:
        self._tx = tx
        self._driver = driver
        self.directory = DriverStaffDirectory(driver)
        self.entitlements = DriverEntitlements(tx)

    @property
    def transaction(self) -> Transaction:
        return self._tx

    async def user_entitlement(self, user_id: str, course_id: uuid.UUID) -> Entitlement | None:
        row = await self._driver.fetchrow(_USER_ENTITLEMENT, user_id, course_id)
        return None if row is None else entitlement_of(row)

    async def membership_id(self, organization_id: uuid.UUID, user_id: str) -> uuid.UUID | None:
        found: uuid.UUID | None = await self._driver.fetchval(
            "SELECT membership_id FROM memberships"
            " WHERE organization_id = $1 AND user_id = $2 AND role IS NOT NULL",
            organization_id,
            user_id,
        )
        return found

    async def add_entitlement(self, t: Transition) -> bool:
        if not await entitlements_sql.insert(self._driver, t.entitlement):
            return False
        await entitlements_sql.audit(self._driver, t)
        for event in transition_events(t):
            self._tx.publish(
                event, aggregate_id=t.entitlement.id, aggregate_version=t.entitlement.version
            )
        return True

    async def course_organization(self, course_id: uuid.UUID) -> uuid.UUID | None:
        org: uuid.UUID | None = await self._driver.fetchval(
            "SELECT organization_id FROM courses WHERE id = $1", course_id
        )
        return org

    async def organization_currency(self, organization_id: uuid.UUID) -> str | None:
        currency: str | None = await self._driver.fetchval(
            "SELECT currency FROM organizations WHERE id = $1", organization_id
        )
        return currency

    async def upsert_plan(self, plan: PlanDraft) -> Plan:
        row = await self._driver.fetchrow(
            _UPSERT_PLAN,
            uuid.uuid4(),
            plan.course_id,
            plan.organization_id,
            plan.price_in_cents,
            plan.currency,
            plan.is_active,
            plan.refund_window_days,
            plan.keep_refund_window,
            plan.access_days,
            plan.keep_access_days,
        )
        assert row is not None
        return Plan(
            id=row["id"],
            course_id=row["course_id"],
            organization_id=row["organization_id"],
            price_in_cents=row["price_in_cents"],
            currency=row["currency"],
            is_active=row["is_active"],
            version=row["version"],
            refund_window_days=row["refund_window_days"],
            access_days=row["access_days"],
        )

    async def add_offer(self, offer: Offer) -> bool:
        added = await self._driver.fetchval(
            _ADD_OFFER,
            offer.id,
            offer.organization_id,
            offer.code,
            offer.title,
            offer.price_in_cents,
            offer.currency,
        )
        return added is not None

    async def course_entitlements(
        self, organization_id: uuid.UUID, course_id: uuid.UUID, limit: int, offset: int
    ) -> tuple[Sequence[Entitlement], int]:
        total = await self._driver.fetchval(_COUNT_ENTITLEMENTS, organization_id, course_id)
        rows = await self._driver.fetch(_ENTITLEMENTS, organization_id, course_id, limit, offset)
        return [entitlement_of(r) for r in rows], int(total)

    async def organization_leads(
        self, organization_id: uuid.UUID, limit: int, offset: int
    ) -> tuple[Sequence[LeadEntry], int]:
        total = await self._driver.fetchval(_COUNT_LEADS, organization_id)
        rows = await self._driver.fetch(_LEADS, organization_id, limit, offset)
        entries = [
            LeadEntry(
                lead_id=r["id"],
                user_id=r["user_id"],
                email=r["email"],
                source=r["source"],
                membership_id=r["membership_id"],
                linked_at=r["created_at"],
            )
            for r in rows
        ]
        return entries, int(total)

    async def add_bulk_job(self, job: BulkJob, rows: Sequence[GrantRow]) -> None:
        await bulk_grants_sql.add_job(self._driver, job, rows)

    async def bulk_job(
        self, organization_id: uuid.UUID, course_id: uuid.UUID, job_id: uuid.UUID
    ) -> tuple[BulkJob, list[RowResult]] | None:
        return await bulk_grants_sql.read_job(self._driver, organization_id, course_id, job_id)

    async def claim_bulk_job(
        self, now: datetime, lease: timedelta
    ) -> tuple[BulkJob, list[GrantRow], list[RowResult]] | None:
        return await bulk_grants_sql.claim_job(self._driver, now, lease)

    async def lock_bulk_job_at(self, job_id: uuid.UUID, processed: int) -> bool:
        return await bulk_grants_sql.lock_job_at(self._driver, job_id, processed)

    async def save_bulk_progress(
        self,
        job_id: uuid.UUID,
        processed: int,
        results: Sequence[RowResult],
        *,
        finished_at: datetime | None,
        lease_until: datetime,
    ) -> None:
        await bulk_grants_sql.save_progress(
            self._driver,
            job_id,
            processed,
            results,
            finished_at=finished_at,
            lease_until=lease_until,
        )


class DriverStaffStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DriverStaffTransaction]:
        async with self._db.driver_unit_of_work() as tx:
            yield DriverStaffTransaction(tx, await tx.driver())
