"""The checkout stores behind ``app.ports``: one decision, two ways to write it.

- :class:`FastCheckoutStore`, the busiest write: a new free entitlement (with the buyer's lead
  link when they are not a member of the seller's organization) on the driver, one read
  statement and one write statement that carries its outbox rows, outside any transaction (no
  SQL compilation, no BEGIN/COMMIT round trips).
- :class:`DriverCheckoutStore`: every case in one driver transaction (paid checkouts, reopened
  rows, idempotency keys, offers, the checkout that lost a race to the fast write).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from coursemesh.chassis.db import Database, DriverUnitOfWork, SingleStatement, statement_outbox
from coursemesh.chassis.transaction import Driver, EventSink, Record, Transaction
from coursemesh.commerce.adapters import coupons_sql, entitlements_sql, gifts_sql
from coursemesh.commerce.adapters.accounts_sql import payment_account, return_allowlist, seller
from coursemesh.commerce.adapters.entitlements_sql import COLUMNS, entitlement_of
from coursemesh.commerce.adapters.tables import SCHEMA
from coursemesh.commerce.app.ports import (
    BuyerStanding,
    CouponUse,
    PaymentDraft,
    Saved,
    StoredAnswer,
)
from coursemesh.commerce.domain.accounts import PaymentAccount
from coursemesh.commerce.domain.checkout import CourseFacts, LeadLink, Offer, Opening
from coursemesh.commerce.domain.coupons import Coupon, CouponUsage
from coursemesh.commerce.domain.entitlements import Entitlement
from coursemesh.commerce.domain.events import lead_created, transition_events
from coursemesh.commerce.domain.gifts import Gift
from coursemesh.commerce.domain.payments import SUPERSEDED, Payment, PurchaseStatus, Seller

# The course, its active plan, the buyer's membership of the seller, their lead and its link
# to the seller ($1 course, $2 buyer).
_COURSE = """
SELECT c.status, c.organization_id, c.name, p.price_in_cents, p.currency, m.membership_id,
       l.id AS lead_id, ol.lead_id IS NOT NULL AS linked, p.refund_window_days,
       p.access_days{entitlement_columns}
FROM courses c
LEFT JOIN plans p ON p.course_id = c.id AND p.type = 'course' AND p.is_active
LEFT JOIN memberships m
       ON m.organization_id = c.organization_id AND m.user_id = $2 AND m.role IS NOT NULL
LEFT JOIN leads l ON l.user_id = $2
LEFT JOIN organization_leads ol ON ol.organization_id = c.organization_id AND ol.lead_id = l.id
{entitlement_join}
WHERE c.id = $1
"""
# ... and the buyer's entitlement to the course, in the same statement (the fast store).
_FACTS = _COURSE.format(
    entitlement_columns=",\n       "
    + ", ".join(f"e.{c} AS e_{c}" for c in COLUMNS.replace(" ", "").split(",")),
    entitlement_join="LEFT JOIN course_entitlements e ON e.user_id = $2 AND e.course_id = c.id",
)
# ... or locked apart (the transactional store: a lock cannot reach into an outer join).
_FACTS_WITHOUT_ENTITLEMENT = _COURSE.format(entitlement_columns="", entitlement_join="")
_LOCK_ENTITLEMENT = (
    f"SELECT {COLUMNS} FROM course_entitlements WHERE user_id = $1 AND course_id = $2 FOR UPDATE"
)

# A new free entitlement's rows, outbox rows and NOTIFY (where relays publish) in one statement,
# outside any transaction (atomic by itself): the lead (if new) and its link to the seller (for
# a buyer who is not a member of the seller's organization), the new entitlement, its audit row.
# Each lead part is switched on by a flag, so there is one prepared statement. Plain INSERTs: a
# row a concurrent checkout of the same buyer wrote since the read is a unique violation, which
# undoes the whole statement. The final SELECT reads the parts in the order the transactional
# store writes them (lead, link, entitlement), so two checkouts of one buyer wait for each
# other instead of deadlocking.
_OUTBOX = statement_outbox(SCHEMA, first_param=22)
_SAVE_FREE = f"""
WITH lead AS (
    INSERT INTO leads (id, user_id, email, source)
    SELECT $1::uuid, $2::text, $3::text, $4::text WHERE $5::bool
    RETURNING 1
), link AS (
    INSERT INTO organization_leads (organization_id, lead_id, membership_id, source)
    SELECT $6::uuid, $1::uuid, NULL, $4::text WHERE $7::bool
    RETURNING 1
), saved AS (
    INSERT INTO course_entitlements (
        id, user_id, course_id, organization_id, status, access_revoked_at,
        source_payment_transaction_id, membership_id, buyer_email, version, status_changed_at,
        access_ends_at
    )
    VALUES ($8, $2, $9, $6, $10, $11, $12, $13, $14, $15, $16, $21)
    RETURNING 1
), audit AS (
    INSERT INTO entitlement_transitions
        (entitlement_id, from_status, to_status, cause, actor, reason, at)
    VALUES ($8, $17, $10, $18, $19, $20, $16)
    RETURNING 1
), {_OUTBOX.cte}
SELECT (SELECT count(*) FROM lead), (SELECT count(*) FROM link), (SELECT count(*) FROM saved),
       (SELECT count(*) FROM audit), {_OUTBOX.tail}
"""


def _facts(row: Record, entitlement: Entitlement | None) -> CourseFacts:
    return CourseFacts(
        status=row["status"],
        organization_id=row["organization_id"],
        name=row["name"],
        price_in_cents=row["price_in_cents"],
        currency=row["currency"],
        membership_id=row["membership_id"],
        lead_id=row["lead_id"],
        linked=row["linked"],
        entitlement=entitlement,
        refund_window_days=row["refund_window_days"],
        access_days=row["access_days"],
    )


async def read_facts(driver: Driver, course_id: uuid.UUID, user_id: str) -> CourseFacts | None:
    """The facts of a course checkout in one statement, outside any transaction."""
    row = await driver.fetchrow(_FACTS, course_id, user_id)
    if row is None:
        return None
    return _facts(row, None if row["e_id"] is None else entitlement_of(row, prefix="e_"))


def _publish_entitlement(events: EventSink, opening: Opening) -> None:
    ent = opening.entitlement
    for event in transition_events(opening.transition):
        events.publish(event, aggregate_id=ent.id, aggregate_version=ent.version)


# --- the fast store ----------------------------------------------------------------------------


class FastCheckoutWrite:
    """A new free entitlement in one statement (``Database.single_statement``)."""

    def __init__(self, write: SingleStatement) -> None:
        self._write = write

    async def course_facts(self, course_id: uuid.UUID, user_id: str) -> CourseFacts | None:
        return await read_facts(self._write.driver, course_id, user_id)

    def accepts(self, opening: Opening) -> bool:
        return opening.kind == "free_new"

    async def save(self, opening: Opening, now: datetime) -> Saved:
        """``lost``, and nothing written, when a concurrent checkout of the same buyer wrote one
        of its rows first (the only unique violation this statement can meet: its other keys
        are fresh ids)."""
        t, lead = opening.transition, opening.lead
        ent = t.entitlement
        # Staged in the order the transactional store writes them: the lead's, then the
        # entitlement's.
        if lead is not None:
            self._write.publish(
                lead_created(lead, lead.lead_id, now),
                aggregate_id=lead.lead_id,
                aggregate_version=1,
            )
        _publish_entitlement(self._write, opening)
        try:
            await self._write.execute(
                _SAVE_FREE,
                lead.lead_id if lead else None,
                ent.user_id,
                lead.email if lead else None,
                lead.source if lead else None,
                lead is not None and lead.new,
                ent.organization_id,
                lead is not None,
                ent.id,
                ent.course_id,
                ent.status,
                ent.access_revoked_at,
                ent.source_payment_transaction_id,
                ent.membership_id,
                ent.buyer_email,
                ent.version,
                ent.status_changed_at,
                t.previous_status,
                t.cause,
                t.actor,
                t.reason,
                ent.access_ends_at,
            )
        except asyncpg.UniqueViolationError:
            return "lost"
        return "saved"


class FastCheckoutStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def write(self) -> AsyncIterator[FastCheckoutWrite]:
        async with self._db.single_statement() as write:
            yield FastCheckoutWrite(write)


# --- the transactional store -----------------------------------------------------------------

_STANDING = """
SELECT m.membership_id, l.id AS lead_id, ol.lead_id IS NOT NULL AS linked
FROM (SELECT 1) AS one
LEFT JOIN memberships m ON m.organization_id = $1 AND m.user_id = $2 AND m.role IS NOT NULL
LEFT JOIN leads l ON l.user_id = $2
LEFT JOIN organization_leads ol ON ol.organization_id = $1 AND ol.lead_id = l.id
"""
_INSERT_LEAD = """
INSERT INTO leads (id, user_id, email, source) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id) DO NOTHING
"""
_LINK_LEAD = """
INSERT INTO organization_leads (organization_id, lead_id, membership_id, source)
VALUES ($1, $2, NULL, $3)
ON CONFLICT DO NOTHING
RETURNING lead_id
"""
_INSERT_PAYMENT = """
INSERT INTO payment_transactions (
    id, organization_id, user_id, entitlement_id, custom_course_purchase_id, amount_in_cents,
    currency, provider, status, metadata, buyer_email, description, version, provider_account_id,
    refund_window_days, access_days, renewal, bundle_purchase_id
)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9::text::jsonb, $10, $11, 1, $12, $13, $14,
        $15, $16)
"""


# The payments of the bundle purchases that opened entitlement $1.
BUNDLE_PAYMENTS_OF = """
SELECT bp.payment_transaction_id FROM bundle_purchase_items bi
JOIN bundle_purchases bp ON bp.id = bi.bundle_purchase_id
WHERE bi.entitlement_id = $1 AND bp.payment_transaction_id IS NOT NULL"""
PAYMENT_COLUMNS = (
    "id, organization_id, user_id, entitlement_id, custom_course_purchase_id, amount_in_cents,"
    " currency, provider, provider_transaction_id, provider_payment_id, status, buyer_email,"
    " description, version, status_reason, provider_account_id, access_days, renewal,"
    " bundle_purchase_id"
)
# The entitlement's open payments, locked ($1 entitlement): its own, and the payment of a
# bundle purchase that opened it.
_OPEN_PAYMENTS = f"""
SELECT {PAYMENT_COLUMNS} FROM payment_transactions
WHERE (entitlement_id = $1 OR id IN ({BUNDLE_PAYMENTS_OF})) AND status = 'pending'
ORDER BY created_at
FOR UPDATE
"""
_SUPERSEDE_PAYMENT = """
UPDATE payment_transactions
   SET status = 'superseded', status_reason = $2, superseded_by = $3, version = $4
 WHERE id = $1
"""
_AUDIT_PAYMENT = """
INSERT INTO payment_transitions (transaction_id, from_status, to_status, cause, actor, reason, at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""


def _key_lock(user_id: str, key: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"{user_id}\0{key}".encode()).digest()[:8], "big", signed=True
    )


class DriverCheckoutTransaction:
    """Every checkout case in one driver transaction (``Database.driver_unit_of_work``)."""

    def __init__(self, tx: DriverUnitOfWork, driver: Driver) -> None:
        self._tx = tx
        self._driver = driver

    @property
    def transaction(self) -> Transaction:
        return self._tx

    async def course_facts(self, course_id: uuid.UUID, user_id: str) -> CourseFacts | None:
        row = await self._driver.fetchrow(_FACTS_WITHOUT_ENTITLEMENT, course_id, user_id)
        if row is None:
            return None
        locked = await self._driver.fetchrow(_LOCK_ENTITLEMENT, user_id, course_id)
        return _facts(row, None if locked is None else entitlement_of(locked))

    def accepts(self, opening: Opening) -> bool:
        return True

    async def save(self, opening: Opening, now: datetime) -> Saved:
        """``lost`` when a concurrent checkout inserted the buyer's entitlement first (the lead
        link, if any, is written: the next decision finds it)."""
        if opening.lead is not None:
            await self.save_lead(opening.lead, now)
        t = opening.transition
        ent = t.entitlement
        if t.previous_status is None:
            if not await entitlements_sql.insert(self._driver, ent):
                return "lost"
        else:
            await entitlements_sql.update(self._driver, ent)
        await entitlements_sql.audit(self._driver, t)
        _publish_entitlement(self._tx, opening)
        return "saved"

    async def stored_answer(self, user_id: str, key: str) -> StoredAnswer | None:
        await self._driver.execute("SELECT pg_advisory_xact_lock($1)", _key_lock(user_id, key))
        row = await self._driver.fetchrow(
            "SELECT request_fingerprint, response::text AS response FROM idempotency_keys"
            " WHERE user_id = $1 AND key = $2",
            user_id,
            key,
        )
        if row is None:
            return None
        return StoredAnswer(row["request_fingerprint"], json.loads(row["response"]))

    async def store_answer(
        self, user_id: str, key: str, fingerprint: str, response: Mapping[str, Any]
    ) -> None:
        await self._driver.execute(
            "INSERT INTO idempotency_keys (user_id, key, request_fingerprint, status_code,"
            " response) VALUES ($1, $2, $3, 201, $4::text::jsonb)",
            user_id,
            key,
            fingerprint,
            json.dumps(response),
        )

    async def offer(self, code: str) -> Offer | None:
        row = await self._driver.fetchrow(
            "SELECT id, organization_id, code, title, price_in_cents, currency"
            " FROM custom_course_offers WHERE code = $1",
            code,
        )
        return None if row is None else offer_of(row)

    async def buyer_standing(self, organization_id: uuid.UUID, user_id: str) -> BuyerStanding:
        row = await self._driver.fetchrow(_STANDING, organization_id, user_id)
        assert row is not None
        return BuyerStanding(row["membership_id"], row["lead_id"], row["linked"])

    async def save_lead(self, lead: LeadLink, now: datetime) -> None:
        # Two statements, not one insert-or-read CTE: a statement's snapshot predates a
        # concurrent checkout's row that its ON CONFLICT waited for, so a CTE could read
        # nothing.
        await self._driver.execute(
            _INSERT_LEAD, lead.lead_id, lead.user_id, lead.email, lead.source
        )
        lead_id = await self._driver.fetchval(
            "SELECT id FROM leads WHERE user_id = $1", lead.user_id
        )
        linked = await self._driver.fetchval(_LINK_LEAD, lead.organization_id, lead_id, lead.source)
        if linked is not None:
            self._tx.publish(
                lead_created(lead, lead_id, now), aggregate_id=lead_id, aggregate_version=1
            )

    async def add_purchase(
        self, purchase_id: uuid.UUID, offer: Offer, user_id: str, status: PurchaseStatus
    ) -> None:
        await self._driver.execute(
            "INSERT INTO custom_course_purchases"
            " (id, offer_id, organization_id, user_id, status, version)"
            " VALUES ($1, $2, $3, $4, $5, 1)",
            purchase_id,
            offer.id,
            offer.organization_id,
            user_id,
            status,
        )

    async def add_payment(self, draft: PaymentDraft) -> None:
        await self._driver.execute(
            _INSERT_PAYMENT,
            draft.id,
            draft.organization_id,
            draft.user_id,
            draft.entitlement_id,
            draft.custom_course_purchase_id,
            draft.amount_in_cents,
            draft.currency,
            draft.provider,
            json.dumps(draft.metadata),
            draft.buyer_email,
            draft.description,
            draft.provider_account_id,
            draft.refund_window_days,
            draft.access_days,
            draft.renewal,
            draft.bundle_purchase_id,
        )

    async def seller(self, organization_id: uuid.UUID) -> Seller | None:
        return await seller(self._driver, organization_id)

    async def payment_account(self, organization_id: uuid.UUID) -> PaymentAccount | None:
        return await payment_account(self._driver, organization_id)

    async def return_allowlist(self, organization_id: uuid.UUID) -> tuple[str, ...]:
        return await return_allowlist(self._driver, organization_id)

    async def set_provider_transaction(
        self, transaction_id: uuid.UUID, provider_transaction_id: str, payment_page_url: str
    ) -> None:
        await self._driver.execute(
            "UPDATE payment_transactions SET provider_transaction_id = $2, payment_page_url = $3"
            " WHERE id = $1",
            transaction_id,
            provider_transaction_id,
            payment_page_url,
        )

    async def entitlement_payments(self, entitlement_id: uuid.UUID) -> Sequence[Payment]:
        rows = await self._driver.fetch(_OPEN_PAYMENTS, entitlement_id)
        return [payment_of(row) for row in rows]

    async def supersede_payment(
        self, payment: Payment, superseded_by: uuid.UUID | None, actor: str, now: datetime
    ) -> None:
        await self._driver.execute(
            _SUPERSEDE_PAYMENT, payment.id, SUPERSEDED, superseded_by, payment.version + 1
        )
        await audit_payment(
            self._driver,
            payment.id,
            from_status=payment.status,
            to_status="superseded",
            cause=SUPERSEDED,
            actor=actor,
            reason=f"superseded by payment {superseded_by}" if superseded_by else "new checkout",
            at=now,
        )

    async def locked_coupon(self, organization_id: uuid.UUID, code: str) -> Coupon | None:
        return await coupons_sql.coupon(self._driver, organization_id, code, lock=True)

    async def coupon_usage(
        self, coupon_id: uuid.UUID, user_id: str, course_id: uuid.UUID
    ) -> CouponUsage:
        return await coupons_sql.usage(self._driver, coupon_id, user_id, course_id)

    async def add_coupon_use(self, use: CouponUse) -> None:
        await coupons_sql.add_use(self._driver, use)

    async def add_gift(self, gift: Gift) -> None:
        await gifts_sql.insert(self._driver, gift)


class DriverCheckoutStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def write(self) -> AsyncIterator[DriverCheckoutTransaction]:
        async with self._db.driver_unit_of_work() as tx:
            yield DriverCheckoutTransaction(tx, await tx.driver())


def offer_of(row: Record) -> Offer:
    return Offer(
        id=row["id"],
        organization_id=row["organization_id"],
        code=row["code"],
        title=row["title"],
        price_in_cents=row["price_in_cents"],
        currency=row["currency"],
    )


def payment_of(row: Record) -> Payment:
    return Payment(
        id=row["id"],
        organization_id=row["organization_id"],
        user_id=row["user_id"],
        entitlement_id=row["entitlement_id"],
        custom_course_purchase_id=row["custom_course_purchase_id"],
        amount_in_cents=row["amount_in_cents"],
        currency=row["currency"],
        provider=row["provider"],
        provider_transaction_id=row["provider_transaction_id"],
        provider_payment_id=row["provider_payment_id"],
        status=row["status"],
        buyer_email=row["buyer_email"],
        description=row["description"],
        version=row["version"],
        status_reason=row["status_reason"],
        provider_account_id=row["provider_account_id"],
        access_days=row["access_days"],
        renewal=row["renewal"],
        bundle_purchase_id=row["bundle_purchase_id"],
    )


async def audit_payment(
    driver: Driver,
    transaction_id: uuid.UUID,
    *,
    from_status: str,
    to_status: str,
    cause: str,
    actor: str,
    reason: str | None,
    at: datetime,
) -> None:
    """A ``payment_transitions`` row: the payment's audit trail."""
    await driver.execute(
        _AUDIT_PAYMENT, transaction_id, from_status, to_status, cause, actor, reason, at
    )
