"""Bundles on the driver: the staff and storefront store, the bundle checkout's transaction (a
course checkout's transaction with the bundle's reads and writes), and the webhook's read of a
bundle purchase."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from coursemesh.chassis.db import Database
from coursemesh.chassis.memberships import DriverStaffDirectory
from coursemesh.chassis.transaction import Driver, Record
from coursemesh.commerce.adapters.checkout_sql import DriverCheckoutTransaction
from coursemesh.commerce.app.ports import BundleCourse, BundleItem, BundlePurchase
from coursemesh.commerce.domain.bundles import Bundle

_BUNDLE = """
SELECT b.id, b.organization_id, b.name, b.price_in_cents, b.currency, b.created_at,
       array(SELECT bc.course_id FROM bundle_courses bc WHERE bc.bundle_id = b.id
             ORDER BY bc.position) AS course_ids
FROM bundles b
"""
_COURSES = """
SELECT c.id, c.organization_id, c.name, c.status, p.price_in_cents, p.currency
FROM courses c
LEFT JOIN plans p ON p.course_id = c.id AND p.type = 'course' AND p.is_active
WHERE c.id = ANY($1::uuid[])
"""
_INSERT_PURCHASE = """
INSERT INTO bundle_purchases (id, bundle_id, organization_id, user_id, amount_in_cents, currency,
                              payment_transaction_id, excluded_course_ids)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""
_INSERT_ITEMS = """
INSERT INTO bundle_purchase_items (bundle_purchase_id, course_id, entitlement_id,
                                   list_price_in_cents)
SELECT $1, item.course_id, item.entitlement_id, item.price
FROM unnest($2::uuid[], $3::uuid[], $4::int[]) AS item(course_id, entitlement_id, price)
"""
_LOCK_PURCHASE = """
SELECT id, bundle_id, organization_id, user_id, amount_in_cents, currency,
       payment_transaction_id, excluded_course_ids
FROM bundle_purchases WHERE id = $1 FOR UPDATE
"""
_ITEMS = """
SELECT course_id, entitlement_id, list_price_in_cents FROM bundle_purchase_items
WHERE bundle_purchase_id = $1 ORDER BY course_id
"""


def bundle_of(row: Record) -> Bundle:
    return Bundle(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        course_ids=tuple(row["course_ids"]),
        price_in_cents=row["price_in_cents"],
        currency=row["currency"],
        created_at=row["created_at"],
    )


async def bundle(driver: Driver, bundle_id: uuid.UUID) -> Bundle | None:
    row = await driver.fetchrow(_BUNDLE + " WHERE b.id = $1", bundle_id)
    return None if row is None else bundle_of(row)


async def lock_purchase(driver: Driver, purchase_id: uuid.UUID) -> BundlePurchase | None:
    """The purchase, locked, with its items in their courses' id order: the webhook locks
    their entitlements in it, as the checkout does."""
    row = await driver.fetchrow(_LOCK_PURCHASE, purchase_id)
    if row is None:
        return None
    items = await driver.fetch(_ITEMS, purchase_id)
    return BundlePurchase(
        id=row["id"],
        bundle_id=row["bundle_id"],
        organization_id=row["organization_id"],
        user_id=row["user_id"],
        amount_in_cents=row["amount_in_cents"],
        currency=row["currency"],
        payment_transaction_id=row["payment_transaction_id"],
        items=tuple(
            BundleItem(i["course_id"], i["entitlement_id"], i["list_price_in_cents"]) for i in items
        ),
        excluded_course_ids=tuple(row["excluded_course_ids"]),
    )


class DriverBundleTransaction:
    def __init__(self, driver: Driver) -> None:
        self._driver = driver
        self.directory = DriverStaffDirectory(driver)

    async def bundle_courses(self, course_ids: list[uuid.UUID]) -> dict[uuid.UUID, BundleCourse]:
        rows = await self._driver.fetch(_COURSES, course_ids)
        return {
            r["id"]: BundleCourse(
                course_id=r["id"],
                name=r["name"],
                price_in_cents=r["price_in_cents"],
                currency=r["currency"],
                organization_id=r["organization_id"],
                status=r["status"],
            )
            for r in rows
        }

    async def add_bundle(self, b: Bundle, created_by: str) -> None:
        await self._driver.execute(
            "INSERT INTO bundles (id, organization_id, name, price_in_cents, currency,"
            " created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            b.id,
            b.organization_id,
            b.name,
            b.price_in_cents,
            b.currency,
            created_by,
            b.created_at,
        )
        await self._driver.execute(
            "INSERT INTO bundle_courses (bundle_id, course_id, position) SELECT $1, c.id,"
            " c.position FROM unnest($2::uuid[]) WITH ORDINALITY AS c(id, position)",
            b.id,
            list(b.course_ids),
        )

    async def bundles(
        self, organization_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[list[Bundle], int]:
        rows = await self._driver.fetch(
            _BUNDLE + " WHERE b.organization_id = $1 ORDER BY b.created_at DESC, b.id"
            " LIMIT $2 OFFSET $3",
            organization_id,
            limit,
            offset,
        )
        total = await self._driver.fetchval(
            "SELECT count(*) FROM bundles WHERE organization_id = $1", organization_id
        )
        return [bundle_of(r) for r in rows], int(total or 0)

    async def bundle(self, bundle_id: uuid.UUID) -> Bundle | None:
        return await bundle(self._driver, bundle_id)


class DriverBundleStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DriverBundleTransaction]:
        async with self._db.driver_unit_of_work() as tx:
            yield DriverBundleTransaction(await tx.driver())


class DriverBundleCheckoutTransaction(DriverCheckoutTransaction):
    async def bundle(self, bundle_id: uuid.UUID) -> Bundle | None:
        return await bundle(self._driver, bundle_id)

    async def add_bundle_purchase(self, purchase: BundlePurchase) -> None:
        await self._driver.execute(
            _INSERT_PURCHASE,
            purchase.id,
            purchase.bundle_id,
            purchase.organization_id,
            purchase.user_id,
            purchase.amount_in_cents,
            purchase.currency,
            purchase.payment_transaction_id,
            list(purchase.excluded_course_ids),
        )
        await self._driver.execute(
            _INSERT_ITEMS,
            purchase.id,
            [i.course_id for i in purchase.items],
            [i.entitlement_id for i in purchase.items],
            [i.list_price_in_cents for i in purchase.items],
        )


class DriverBundleCheckoutStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def write(self) -> AsyncIterator[DriverBundleCheckoutTransaction]:
        async with self._db.driver_unit_of_work() as tx:
            yield DriverBundleCheckoutTransaction(tx, await tx.driver())
