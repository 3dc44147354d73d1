"""Coupons on the driver: the staff store, and the reads and writes a checkout makes (one
copy of each statement, used by both)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from coursemesh.chassis.db import Database
from coursemesh.chassis.memberships import DriverStaffDirectory
from coursemesh.chassis.transaction import Driver, Record
from coursemesh.commerce.app.ports import CouponSummary, CouponUse, PricedCourse
from coursemesh.commerce.domain.coupons import (
    RELEASED_REFUND_REASONS,
    SETTLED_PAYMENT_STATUSES,
    Coupon,
    CouponUsage,
)

_COLUMNS = (
    "id, organization_id, code, percent_off, amount_off_cents, course_ids, valid_from,"
    " valid_until, max_redemptions, max_per_buyer, created_at"
)


def _holding(settled: str, reasons: str) -> str:
    """Whether a use holds its place (domain.coupons): free, paid (``settled`` names the
    parameter carrying the settled statuses, ``reasons`` the released refunds'), or open for
    a checkout still pending (a renewal's: its payment open while the access goes on)."""
    return f"""(r.payment_transaction_id IS NULL
     OR (p.status = ANY({settled}::text[])
         AND NOT (p.status = 'refunded'
                  AND coalesce(p.status_reason, '') = ANY({reasons}::text[])))
     OR (p.status = 'pending' AND (e.status = 'pending' OR p.renewal)))"""


_JOINS = """
LEFT JOIN payment_transactions p ON p.id = r.payment_transaction_id
LEFT JOIN course_entitlements e ON e.id = r.entitlement_id
"""
# The buyer's (``$2``) own pending checkout of the course (``$3``) is left out: the checkout
# that asks supersedes it.
_USAGE = f"""
SELECT count(*) AS total, count(*) FILTER (WHERE r.user_id = $2) AS by_buyer
FROM coupon_redemptions r {_JOINS}
WHERE r.coupon_id = $1 AND {_holding("$4", "$5")}
  AND NOT (r.user_id = $2 AND r.course_id = $3 AND coalesce(p.status, '') = 'pending')
"""
_SUMMARIES = f"""
SELECT r.coupon_id AS id,
       count(*) FILTER (WHERE {_holding("$2", "$3")} AND coalesce(p.status, '') <> 'pending')
           AS redeemed,
       count(*) FILTER (WHERE p.status = 'pending' AND (e.status = 'pending' OR p.renewal))
           AS reserved
FROM coupon_redemptions r {_JOINS}
WHERE r.coupon_id = ANY($1::uuid[])
GROUP BY r.coupon_id
"""
_PRICED_COURSE = """
SELECT c.status, c.organization_id, p.price_in_cents, p.currency
FROM courses c
LEFT JOIN plans p ON p.course_id = c.id AND p.type = 'course' AND p.is_active
WHERE c.id = $1
"""


def coupon_of(row: Record) -> Coupon:
    course_ids = row["course_ids"]
    return Coupon(
        id=row["id"],
        organization_id=row["organization_id"],
        code=row["code"],
        percent_off=row["percent_off"],
        amount_off_cents=row["amount_off_cents"],
        course_ids=None if course_ids is None else tuple(course_ids),
        valid_from=row["valid_from"],
        valid_until=row["valid_until"],
        max_redemptions=row["max_redemptions"],
        max_per_buyer=row["max_per_buyer"],
        created_at=row["created_at"],
    )


async def coupon(
    driver: Driver, organization_id: uuid.UUID, code: str, *, lock: bool
) -> Coupon | None:
    """The organization's coupon with ``code``; ``lock``: until the end of the transaction, so
    that checkouts using one coupon count its uses one after another."""
    query = f"SELECT {_COLUMNS} FROM coupons WHERE organization_id = $1 AND code = $2"
    row = await driver.fetchrow(query + (" FOR UPDATE" if lock else ""), organization_id, code)
    return None if row is None else coupon_of(row)


async def usage(
    driver: Driver, coupon_id: uuid.UUID, user_id: str, course_id: uuid.UUID
) -> CouponUsage:
    row = await driver.fetchrow(
        _USAGE,
        coupon_id,
        user_id,
        course_id,
        list(SETTLED_PAYMENT_STATUSES),
        list(RELEASED_REFUND_REASONS),
    )
    assert row is not None
    return CouponUsage(total=row["total"], by_buyer=row["by_buyer"])


async def add_use(driver: Driver, use: CouponUse) -> None:
    await driver.execute(
        "INSERT INTO coupon_redemptions (id, coupon_id, user_id, course_id, entitlement_id,"
        " payment_transaction_id, price_in_cents, discount_in_cents, currency)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        use.id,
        use.coupon_id,
        use.user_id,
        use.course_id,
        use.entitlement_id,
        use.payment_transaction_id,
        use.price_in_cents,
        use.discount_in_cents,
        use.currency,
    )


async def priced_course(driver: Driver, course_id: uuid.UUID) -> PricedCourse | None:
    row = await driver.fetchrow(_PRICED_COURSE, course_id)
    if row is None:
        return None
    return PricedCourse(
        status=row["status"],
        organization_id=row["organization_id"],
        price_in_cents=row["price_in_cents"],
        currency=row["currency"],
    )


class DriverCouponTransaction:
    def __init__(self, driver: Driver) -> None:
        self._driver = driver
        self.directory = DriverStaffDirectory(driver)

    async def course_organizations(self, course_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        rows = await self._driver.fetch(
            "SELECT id, organization_id FROM courses WHERE id = ANY($1::uuid[])", course_ids
        )
        return {row["id"]: row["organization_id"] for row in rows}

    async def add_coupon(self, c: Coupon, created_by: str) -> bool:
        try:
            await self._driver.execute(
                f"INSERT INTO coupons ({_COLUMNS}, created_by)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                c.id,
                c.organization_id,
                c.code,
                c.percent_off,
                c.amount_off_cents,
                None if c.course_ids is None else list(c.course_ids),
                c.valid_from,
                c.valid_until,
                c.max_redemptions,
                c.max_per_buyer,
                c.created_at,
                created_by,
            )
        except asyncpg.UniqueViolationError:
            return False
        return True

    async def coupons(
        self, organization_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[list[CouponSummary], int]:
        rows = await self._driver.fetch(
            f"SELECT {_COLUMNS} FROM coupons WHERE organization_id = $1"
            " ORDER BY created_at DESC, id LIMIT $2 OFFSET $3",
            organization_id,
            limit,
            offset,
        )
        total = await self._driver.fetchval(
            "SELECT count(*) FROM coupons WHERE organization_id = $1", organization_id
        )
        found = [coupon_of(row) for row in rows]
        counts: dict[Any, Any] = {}
        if found:
            for row in await self._driver.fetch(
                _SUMMARIES,
                [c.id for c in found],
                list(SETTLED_PAYMENT_STATUSES),
                list(RELEASED_REFUND_REASONS),
            ):
                counts[row["id"]] = (row["redeemed"], row["reserved"])
        return [CouponSummary(c, *counts.get(c.id, (0, 0))) for c in found], int(total or 0)

    async def coupon(self, organization_id: uuid.UUID, code: str) -> Coupon | None:
        return await coupon(self._driver, organization_id, code, lock=False)

    async def usage(self, coupon_id: uuid.UUID, user_id: str, course_id: uuid.UUID) -> CouponUsage:
        return await usage(self._driver, coupon_id, user_id, course_id)

    async def priced_course(self, course_id: uuid.UUID) -> PricedCourse | None:
        return await priced_course(self._driver, course_id)


class DriverCouponStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DriverCouponTransaction]:
        async with self._db.driver_unit_of_work() as tx:
            yield DriverCouponTransaction(await tx.driver())
