"""A seller's payment settings: the organization's connected account at the payment provider
(opened and onboarded by its owners and admins, read by its staff) and the return URLs its
checkouts may send buyers back to.

Authorization: anyone not staff of the organization gets 404, as everywhere under
``/organizations/:orgId``; staff who are neither owner nor admin may read but not change (403
``ORGANIZATION_ADMIN_REQUIRED``): where the money goes and where buyers are sent are the
organization's owners' decisions, not every trainer's."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from coursemesh.chassis.errors import Conflict, Forbidden
from coursemesh.chassis.staff import require_staff
from coursemesh.commerce.app.ports import (
    AccountStore,
    AccountTransaction,
    OnboardingLink,
    PaymentProvider,
)
from coursemesh.commerce.domain.accounts import PaymentAccount, account_after
from coursemesh.commerce.domain.return_urls import allowlist_entries, return_url


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Onboarding:
    account: PaymentAccount
    link: OnboardingLink


@dataclass(frozen=True, slots=True)
class Allowlist:
    organization_id: uuid.UUID
    urls: tuple[str, ...]


async def _require_admin(tx: AccountTransaction, org: uuid.UUID, user_id: str) -> None:
    await require_staff(tx, org, user_id)
    if not await tx.is_admin(org, user_id):
        raise Forbidden(
            "Only an owner or admin of the organization may change its payment settings",
            code="ORGANIZATION_ADMIN_REQUIRED",
        )


class SellerPayments:
    def __init__(
        self,
        store: AccountStore,
        provider: PaymentProvider,
        *,
        public_base_url: str,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._store = store
        self._provider = provider
        self._base = public_base_url.rstrip("/")
        self._clock = clock

    @property
    def onboarding_pages(self) -> tuple[str, str]:
        """The platform's own pages a seller returns to from onboarding: done, link expired."""
        return (
            f"{self._base}/payments/onboarding/return",
            f"{self._base}/payments/onboarding/refresh",
        )

    async def onboard(
        self,
        organization_id: uuid.UUID,
        user_id: str,
        return_to: str | None = None,
        refresh_to: str | None = None,
    ) -> Onboarding:
        """The organization's connected account (opened at the provider on the first call)
        and a fresh onboarding link for it. A later call refreshes the account's state from
        the provider, so the answer is current even if a webhook is late."""
        async with self._store.transaction() as tx:
            await _require_admin(tx, organization_id, user_id)
            allowlist = await tx.return_allowlist(organization_id)
            done, expired = pages = self.onboarding_pages
            back = (
                done if return_to is None else return_url(return_to, "returnUrl", allowlist, pages)
            )
            again = (
                expired
                if refresh_to is None
                else return_url(refresh_to, "refreshUrl", allowlist, pages)
            )
            account = await self._current_account(tx, organization_id)
            link = await self._provider.onboarding_link(
                tx.transaction, account.account_id, back, again
            )
            return Onboarding(account, link)

    async def _current_account(
        self, tx: AccountTransaction, organization_id: uuid.UUID
    ) -> PaymentAccount:
        """The organization's account as the provider has it now: opened on the first call,
        read back (and saved when changed) on the next ones."""
        account = await tx.lock_account(organization_id)
        if account is None:
            seller = await tx.seller(organization_id)
            if seller is None:
                raise Conflict(
                    "The organization's profile has not reached commerce yet; retry shortly",
                    code="ORGANIZATION_NOT_SYNCED",
                )
            state = await self._provider.create_account(
                tx.transaction, organization_id, seller.name
            )
            account = PaymentAccount(
                organization_id=organization_id,
                provider=self._provider.name,
                account_id=state.account_id,
                charges_enabled=state.charges_enabled,
                payouts_enabled=state.payouts_enabled,
                details_submitted=state.details_submitted,
                version=1,
            )
            await tx.add_account(account)
            return account
        if account.provider != self._provider.name:
            raise Conflict(
                f"The organization's payment account is at {account.provider}, not at"
                f" {self._provider.name}",
                code="PAYMENT_ACCOUNT_AT_ANOTHER_PROVIDER",
            )
        changed = account_after(
            account, await self._provider.retrieve_account(tx.transaction, account.account_id)
        )
        if changed is None:
            return account
        await tx.save_account(changed)
        return changed

    async def account(self, organization_id: uuid.UUID, user_id: str) -> PaymentAccount | None:
        async with self._store.transaction() as tx:
            await require_staff(tx, organization_id, user_id)
            return await tx.payment_account(organization_id)

    async def set_return_allowlist(
        self, organization_id: uuid.UUID, user_id: str, urls: list[str]
    ) -> Allowlist:
        async with self._store.transaction() as tx:
            await _require_admin(tx, organization_id, user_id)
            entries = allowlist_entries(urls)
            await tx.set_return_allowlist(organization_id, entries, user_id, self._clock())
            return Allowlist(organization_id, entries)

    async def return_allowlist(self, organization_id: uuid.UUID, user_id: str) -> Allowlist:
        async with self._store.transaction() as tx:
            await require_staff(tx, organization_id, user_id)
            return Allowlist(organization_id, await tx.return_allowlist(organization_id))
