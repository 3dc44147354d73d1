"""The payment webhooks' store: one driver transaction per webhook."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from coursemesh.chassis.db import Database
from coursemesh.chassis.transaction import Driver, Transaction
from coursemesh.commerce.adapters import accounts_sql, bundles_sql, gifts_sql
from coursemesh.commerce.adapters.accounts_sql import seller
from coursemesh.commerce.adapters.checkout_sql import (
    PAYMENT_COLUMNS,
    audit_payment,
    offer_of,
    payment_of,
)
from coursemesh.commerce.adapters.entitlements_sql import DriverEntitlements
from coursemesh.commerce.app.ports import BundlePurchase, ProviderName
from coursemesh.commerce.domain.accounts import AccountEvent, PaymentAccount
from coursemesh.commerce.domain.checkout import Offer
from coursemesh.commerce.domain.gifts import Gift
from coursemesh.commerce.domain.payments import (
    WEBHOOK_ACTOR,
    LateReason,
    Payment,
    PaymentEvent,
    Purchase,
    PurchaseStatus,
    Receipt,
    Seller,
)

_RECORD_EVENT = """
INSERT INTO webhook_events (provider, provider_event_id, organization_id, type)
VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING
RETURNING provider_event_id
"""
# Whichever of the payment's ids the event carries ($1 ours, $2 the hosted session, $3 the
# provider's payment); a null one matches nothing.
_LOCK_PAYMENT = f"""
SELECT {PAYMENT_COLUMNS} FROM payment_transactions
WHERE id = $1 OR provider_transaction_id = $2 OR provider_payment_id = $3
FOR UPDATE
"""
_COMPLETE_PAYMENT = """
UPDATE payment_transactions
   SET status = $2, version = $3, completed_at = $4, provider_payment_id = $5
 WHERE id = $1
"""
_SET_PAYMENT_STATUS = "UPDATE payment_transactions SET status = $2, version = $3 WHERE id = $1"
_LOCK_PURCHASE = """
SELECT id, offer_id, organization_id, user_id, status, version
FROM custom_course_purchases WHERE id = $1 FOR UPDATE
"""
# A late payment refunded: its status, why, when, and the provider's payment id (for support).
_LATE_REFUND = """
UPDATE payment_transactions
   SET status = 'refunded', status_reason = $2, version = $3, refunded_at = $4,
       completed_at = coalesce(completed_at, $4), provider_payment_id = $5
 WHERE id = $1
"""
_QUEUE_RECEIPT = """
INSERT INTO receipts (transaction_id, email, subject, body) VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING
"""


class DriverPaymentLedger:
    def __init__(self, tx: Transaction, driver: Driver) -> None:
        self._tx = tx
        self._driver = driver
        self.entitlements = DriverEntitlements(tx)

    @property
    def transaction(self) -> Transaction:
        return self._tx

    async def account_organization(
        self, provider: ProviderName, account_id: str
    ) -> uuid.UUID | None:
        return await accounts_sql.account_organization(self._driver, provider, account_id)

    async def lock_account(self, organization_id: uuid.UUID) -> PaymentAccount | None:
        return await accounts_sql.payment_account(self._driver, organization_id, lock=True)

    async def save_account(self, account: PaymentAccount) -> None:
        await accounts_sql.save_account(self._driver, account)

    async def record_event(
        self,
        provider: ProviderName,
        event: PaymentEvent | AccountEvent,
        organization_id: uuid.UUID,
    ) -> bool:
        recorded = await self._driver.fetchval(
            _RECORD_EVENT, provider, event.provider_event_id, organization_id, event.type
        )
        return recorded is not None

    async def lock_payment(
        self,
        own_id: uuid.UUID | None,
        provider_transaction_id: str | None,
        provider_payment_id: str | None,
    ) -> Payment | None:
        if own_id is None and not provider_transaction_id and not provider_payment_id:
            return None
        rows = await self._driver.fetch(
            _LOCK_PAYMENT,
            own_id,
            provider_transaction_id or None,
            provider_payment_id or None,
        )
        return payment_of(rows[0]) if rows else None

    async def course_organization(self, course_id: uuid.UUID) -> uuid.UUID | None:
        org: uuid.UUID | None = await self._driver.fetchval(
            "SELECT organization_id FROM courses WHERE id = $1", course_id
        )
        return org

    async def lock_purchase(self, purchase_id: uuid.UUID) -> Purchase | None:
        row = await self._driver.fetchrow(_LOCK_PURCHASE, purchase_id)
        if row is None:
            return None
        return Purchase(
            id=row["id"],
            offer_id=row["offer_id"],
            organization_id=row["organization_id"],
            user_id=row["user_id"],
            status=row["status"],
            version=row["version"],
        )

    async def offer_of(self, purchase: Purchase) -> Offer:
        row = await self._driver.fetchrow(
            "SELECT id, organization_id, code, title, price_in_cents, currency"
            " FROM custom_course_offers WHERE id = $1",
            purchase.offer_id,
        )
        assert row is not None
        return offer_of(row)

    async def lock_bundle_purchase(self, purchase_id: uuid.UUID) -> BundlePurchase | None:
        return await bundles_sql.lock_purchase(self._driver, purchase_id)

    async def set_payment_status(
        self,
        payment: Payment,
        status: str,
        *,
        completed_at: datetime | None = None,
        provider_payment_id: str | None = None,
    ) -> int:
        version = payment.version + 1
        if completed_at is not None:
            await self._driver.execute(
                _COMPLETE_PAYMENT, payment.id, status, version, completed_at, provider_payment_id
            )
        else:
            await self._driver.execute(_SET_PAYMENT_STATUS, payment.id, status, version)
        return version

    async def set_purchase_status(
        self, purchase: Purchase, status: PurchaseStatus, transaction_id: uuid.UUID | None
    ) -> None:
        await self._driver.execute(
            "UPDATE custom_course_purchases SET status = $2, version = version + 1,"
            " transaction_id = coalesce($3, transaction_id) WHERE id = $1",
            purchase.id,
            status,
            transaction_id,
        )

    async def seller(self, organization_id: uuid.UUID) -> Seller | None:
        return await seller(self._driver, organization_id)

    async def queue_receipt(self, receipt: Receipt) -> None:
        await self._driver.execute(
            _QUEUE_RECEIPT, receipt.transaction_id, receipt.email, receipt.subject, receipt.body
        )

    async def record_late_refund(
        self,
        payment: Payment,
        reason: LateReason,
        *,
        provider_payment_id: str | None,
        now: datetime,
    ) -> int:
        version = payment.version + 1
        await self._driver.execute(
            _LATE_REFUND, payment.id, reason, version, now, provider_payment_id
        )
        await audit_payment(
            self._driver,
            payment.id,
            from_status=payment.status,
            to_status="refunded",
            cause=reason,
            actor=WEBHOOK_ACTOR,
            reason=f"refunded at the provider ({payment.provider_transaction_id})",
            at=now,
        )
        return version

    async def lock_gift(
        self, gift_id: uuid.UUID | None, payment_id: uuid.UUID | None
    ) -> Gift | None:
        return await gifts_sql.lock(self._driver, gift_id, payment_id)

    async def save_gift(self, gift: Gift) -> None:
        await gifts_sql.save(self._driver, gift)


class DriverWebhookStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DriverPaymentLedger]:
        async with self._db.driver_unit_of_work() as tx:
            yield DriverPaymentLedger(tx, await tx.driver())
