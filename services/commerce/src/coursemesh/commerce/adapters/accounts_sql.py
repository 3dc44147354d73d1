"""Sellers' payment settings in SQL: ``payment_accounts`` and ``return_url_allowlists`` (read
by checkouts and webhooks too, through the functions here)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from coursemesh.chassis.db import Database, DriverUnitOfWork
from coursemesh.chassis.memberships import DriverStaffDirectory
from coursemesh.chassis.transaction import Driver, Record, Transaction
from coursemesh.commerce.app.ports import CheckoutSummary
from coursemesh.commerce.domain.accounts import PaymentAccount
from coursemesh.commerce.domain.payments import Seller
from coursemesh.contracts.types import PaymentProvider as ProviderName

_ACCOUNT = (
    "SELECT organization_id, provider, account_id, charges_enabled, payouts_enabled,"
    " details_submitted, version FROM payment_accounts WHERE organization_id = $1"
)
_INSERT_ACCOUNT = """
INSERT INTO payment_accounts (organization_id, provider, account_id, charges_enabled,
                              payouts_enabled, details_submitted, version)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
_UPDATE_ACCOUNT = """
UPDATE payment_accounts
   SET charges_enabled = $2, payouts_enabled = $3, details_submitted = $4, version = $5,
       updated_at = now()
 WHERE organization_id = $1
"""
_ACCOUNT_ORGANIZATION = (
    "SELECT organization_id FROM payment_accounts WHERE provider = $1 AND account_id = $2"
)
_ALLOWLIST = "SELECT urls FROM return_url_allowlists WHERE organization_id = $1"
_SET_ALLOWLIST = """
INSERT INTO return_url_allowlists (organization_id, urls, updated_by, updated_at, version)
VALUES ($1, $2, $3, $4, 1)
ON CONFLICT (organization_id) DO UPDATE
   SET urls = EXCLUDED.urls, updated_by = EXCLUDED.updated_by,
       updated_at = EXCLUDED.updated_at, version = return_url_allowlists.version + 1
"""
_IS_ADMIN = (
    "SELECT role IN ('owner', 'admin') FROM memberships"
    " WHERE organization_id = $1 AND user_id = $2 AND is_staff"
)


async def seller(driver: Driver, organization_id: uuid.UUID) -> Seller | None:
    row = await driver.fetchrow(
        "SELECT name, logo_url FROM organizations WHERE id = $1", organization_id
    )
    return None if row is None else Seller(row["name"], row["logo_url"])


def _account_of(row: Record) -> PaymentAccount:
    return PaymentAccount(
        organization_id=row["organization_id"],
        provider=row["provider"],
        account_id=row["account_id"],
        charges_enabled=row["charges_enabled"],
        payouts_enabled=row["payouts_enabled"],
        details_submitted=row["details_submitted"],
        version=row["version"],
    )


async def payment_account(
    driver: Driver, organization_id: uuid.UUID, *, lock: bool = False
) -> PaymentAccount | None:
    row = await driver.fetchrow(_ACCOUNT + (" FOR UPDATE" if lock else ""), organization_id)
    return None if row is None else _account_of(row)


async def lock_account(driver: Driver, organization_id: uuid.UUID) -> PaymentAccount | None:
    """The account, locked; with no account yet, the organization's own lock is taken (until
    the end of the transaction), so two first onboardings open one account."""
    digest = hashlib.sha256(f"payment-account\0{organization_id}".encode()).digest()
    await driver.execute(
        "SELECT pg_advisory_xact_lock($1)", int.from_bytes(digest[:8], "big", signed=True)
    )
    return await payment_account(driver, organization_id, lock=True)


async def save_account(driver: Driver, account: PaymentAccount) -> None:
    await driver.execute(
        _UPDATE_ACCOUNT,
        account.organization_id,
        account.charges_enabled,
        account.payouts_enabled,
        account.details_submitted,
        account.version,
    )


async def account_organization(
    driver: Driver, provider: ProviderName, account_id: str
) -> uuid.UUID | None:
    value = await driver.fetchval(_ACCOUNT_ORGANIZATION, provider, account_id)
    return value if isinstance(value, uuid.UUID) else None


async def return_allowlist(driver: Driver, organization_id: uuid.UUID) -> tuple[str, ...]:
    urls = await driver.fetchval(_ALLOWLIST, organization_id)
    return tuple(urls or ())


class DriverAccountTransaction:
    def __init__(self, tx: DriverUnitOfWork, driver: Driver) -> None:
        self._tx = tx
        self._driver = driver
        self._staff = DriverStaffDirectory(driver)

    @property
    def transaction(self) -> Transaction:
        return self._tx

    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool:
        return await self._staff.is_staff(organization_id, user_id)

    async def is_admin(self, organization_id: uuid.UUID, user_id: str) -> bool:
        return bool(await self._driver.fetchval(_IS_ADMIN, organization_id, user_id))

    async def seller(self, organization_id: uuid.UUID) -> Seller | None:
        return await seller(self._driver, organization_id)

    async def payment_account(self, organization_id: uuid.UUID) -> PaymentAccount | None:
        return await payment_account(self._driver, organization_id)

    async def lock_account(self, organization_id: uuid.UUID) -> PaymentAccount | None:
        return await lock_account(self._driver, organization_id)

    async def add_account(self, account: PaymentAccount) -> None:
        await self._driver.execute(
            _INSERT_ACCOUNT,
            account.organization_id,
            account.provider,
            account.account_id,
            account.charges_enabled,
            account.payouts_enabled,
            account.details_submitted,
            account.version,
        )

    async def save_account(self, account: PaymentAccount) -> None:
        await save_account(self._driver, account)

    async def return_allowlist(self, organization_id: uuid.UUID) -> tuple[str, ...]:
        return await return_allowlist(self._driver, organization_id)

    async def set_return_allowlist(
        self, organization_id: uuid.UUID, urls: tuple[str, ...], actor: str, now: datetime
    ) -> None:
        await self._driver.execute(_SET_ALLOWLIST, organization_id, list(urls), actor, now)


class DriverAccountStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DriverAccountTransaction]:
        async with self._db.driver_unit_of_work() as tx:
            yield DriverAccountTransaction(tx, await tx.driver())


_CHECKOUT_SUMMARY = """
SELECT p.description, p.amount_in_cents, p.currency, p.status, p.payment_page_url,
       coalesce(o.name, '') AS seller_name, o.logo_url
  FROM payment_transactions p LEFT JOIN organizations o ON o.id = p.organization_id
 WHERE p.provider_transaction_id = $1 OR p.id = $2
"""


class DriverCheckoutLookup:
    """The checkout behind a payment session, for the pages a buyer returns to."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def by_session(self, session: str) -> CheckoutSummary | None:
        try:
            payment_id: uuid.UUID | None = uuid.UUID(session)
        except ValueError:
            payment_id = None
        async with self._db.reading() as driver:
            row = await driver.fetchrow(_CHECKOUT_SUMMARY, session, payment_id)
        if row is None:
            return None
        return CheckoutSummary(
            description=row["description"],
            seller_name=row["seller_name"],
            seller_logo_url=row["logo_url"],
            amount_in_cents=row["amount_in_cents"],
            currency=row["currency"],
            status=row["status"],
            payment_page_url=row["payment_page_url"],
        )
