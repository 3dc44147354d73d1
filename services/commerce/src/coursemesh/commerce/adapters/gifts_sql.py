"""Gifts on the driver: the rows a gift checkout adds, the webhook and the claim change, and
the store of the gift use cases (claim, resend, the payer's list)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from coursemesh.chassis.db import Database
from coursemesh.chassis.transaction import Driver, Record
from coursemesh.commerce.adapters.accounts_sql import seller
from coursemesh.commerce.adapters.staff_sql import DriverStaffTransaction
from coursemesh.commerce.domain.gifts import Gift
from coursemesh.commerce.domain.payments import Receipt, Seller

GIFT_COLUMNS = (
    "id, organization_id, course_id, course_name, payer_user_id, payer_email, recipient_email,"
    " status, payment_transaction_id, created_at, claim_token_hash, entitlement_id, claimed_by,"
    " claimed_at, sent_at, send_count, access_days"
)
_INSERT = """
INSERT INTO gifts (id, organization_id, course_id, course_name, payer_user_id, payer_email,
                   recipient_email, status, payment_transaction_id, created_at, send_count,
                   access_days)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11)
"""
# By its id, or else by the payment it is paid with ($1 gift, $2 payment; a null matches none).
_LOCK = f"""
SELECT {GIFT_COLUMNS} FROM gifts WHERE id = $1 OR payment_transaction_id = $2
ORDER BY id = $1 DESC LIMIT 1 FOR UPDATE
"""
_LOCK_BY_TOKEN = f"SELECT {GIFT_COLUMNS} FROM gifts WHERE claim_token_hash = $1 FOR UPDATE"
_LOCK_OWN = f"SELECT {GIFT_COLUMNS} FROM gifts WHERE id = $1 AND payer_user_id = $2 FOR UPDATE"
_SAVE = """
UPDATE gifts
   SET status = $2, claim_token_hash = $3, entitlement_id = $4, claimed_by = $5,
       claimed_at = $6, sent_at = $7, send_count = $8
 WHERE id = $1
"""
_PAYER_GIFTS = f"""
SELECT {GIFT_COLUMNS}, count(*) OVER () AS total FROM gifts WHERE payer_user_id = $1
ORDER BY created_at DESC, id LIMIT $2 OFFSET $3
"""
_QUEUE_MAIL = """
INSERT INTO receipts (transaction_id, email, subject, body) VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING
"""


def gift_of(row: Record) -> Gift:
    return Gift(
        id=row["id"],
        organization_id=row["organization_id"],
        course_id=row["course_id"],
        course_name=row["course_name"],
        payer_user_id=row["payer_user_id"],
        payer_email=row["payer_email"],
        recipient_email=row["recipient_email"],
        status=row["status"],
        payment_transaction_id=row["payment_transaction_id"],
        created_at=row["created_at"],
        claim_token_hash=row["claim_token_hash"],
        entitlement_id=row["entitlement_id"],
        claimed_by=row["claimed_by"],
        claimed_at=row["claimed_at"],
        sent_at=row["sent_at"],
        send_count=row["send_count"],
        access_days=row["access_days"],
    )


async def insert(driver: Driver, gift: Gift) -> None:
    await driver.execute(
        _INSERT,
        gift.id,
        gift.organization_id,
        gift.course_id,
        gift.course_name,
        gift.payer_user_id,
        gift.payer_email,
        gift.recipient_email,
        gift.status,
        gift.payment_transaction_id,
        gift.created_at,
        gift.access_days,
    )


async def lock(
    driver: Driver, gift_id: uuid.UUID | None, payment_id: uuid.UUID | None
) -> Gift | None:
    if gift_id is None and payment_id is None:
        return None
    row = await driver.fetchrow(_LOCK, gift_id, payment_id)
    return None if row is None else gift_of(row)


async def save(driver: Driver, gift: Gift) -> None:
    await driver.execute(
        _SAVE,
        gift.id,
        gift.status,
        gift.claim_token_hash,
        gift.entitlement_id,
        gift.claimed_by,
        gift.claimed_at,
        gift.sent_at,
        gift.send_count,
    )


async def queue_mail(driver: Driver, mail: Receipt) -> None:
    await driver.execute(_QUEUE_MAIL, mail.transaction_id, mail.email, mail.subject, mail.body)


class DriverGiftTransaction(DriverStaffTransaction):
    """The staff transaction's reads and writes of a user's entitlement (locked, inserted with
    its audit row and events), and the gift's own."""

    async def lock_by_token(self, token_hash: str) -> Gift | None:
        row = await self._driver.fetchrow(_LOCK_BY_TOKEN, token_hash)
        return None if row is None else gift_of(row)

    async def lock_own(self, gift_id: uuid.UUID, payer_user_id: str) -> Gift | None:
        row = await self._driver.fetchrow(_LOCK_OWN, gift_id, payer_user_id)
        return None if row is None else gift_of(row)

    async def save_gift(self, gift: Gift) -> None:
        await save(self._driver, gift)

    async def seller(self, organization_id: uuid.UUID) -> Seller | None:
        return await seller(self._driver, organization_id)

    async def queue_mail(self, mail: Receipt) -> None:
        await queue_mail(self._driver, mail)

    async def payer_gifts(
        self, payer_user_id: str, offset: int, limit: int
    ) -> tuple[Sequence[Gift], int]:
        rows = await self._driver.fetch(_PAYER_GIFTS, payer_user_id, limit, offset)
        if rows:
            return [gift_of(r) for r in rows], int(rows[0]["total"])
        total = await self._driver.fetchval(
            "SELECT count(*) FROM gifts WHERE payer_user_id = $1", payer_user_id
        )
        return [], int(total or 0)


class DriverGiftStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DriverGiftTransaction]:
        async with self._db.driver_unit_of_work() as tx:
            yield DriverGiftTransaction(tx, await tx.driver())
