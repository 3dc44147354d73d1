"""Sellers' payment accounts: each organization is paid into its own account at the payment
provider (a Stripe Connect connected account; the sandbox keeps accounts of its own), and a
provider's event about an account or a payment names the account it happened on. Pure: no I/O.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from coursemesh.chassis.errors import Conflict, NotFound, Unprocessable
from coursemesh.contracts.types import PaymentProvider as ProviderName

#: Where an organization stands with its provider account:
#: ``not_started`` (no account yet), ``onboarding`` (details still to give),
#: ``pending_verification`` (details given; the provider has not enabled charges yet),
#: ``enabled`` (paid checkouts open hosted payments on it).
AccountStatus = Literal["not_started", "onboarding", "pending_verification", "enabled"]

#: The largest platform fee, in basis points of the amount (100 % would leave the seller
#: nothing, and Stripe refuses an application fee as large as the charge).
MAX_PLATFORM_FEE_BPS = 5_000


@dataclass(frozen=True, slots=True)
class AccountState:
    """What the provider says of a connected account."""

    account_id: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool


@dataclass(frozen=True, slots=True)
class PaymentAccount:
    """An organization's account at the provider (``payment_accounts``)."""

    organization_id: uuid.UUID
    provider: ProviderName
    account_id: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    version: int

    @property
    def state(self) -> AccountState:
        return AccountState(
            self.account_id, self.charges_enabled, self.payouts_enabled, self.details_submitted
        )


@dataclass(frozen=True)
class AccountEvent:
    """A verified provider event about a connected account (Stripe's ``account.updated``)."""

    provider_event_id: str
    type: str
    state: AccountState


def account_status(account: PaymentAccount | None) -> AccountStatus:
    if account is None:
        return "not_started"
    if account.charges_enabled:
        return "enabled"
    return "pending_verification" if account.details_submitted else "onboarding"


def account_after(account: PaymentAccount, state: AccountState) -> PaymentAccount | None:
    """The account with the provider's newer state; None when nothing changed."""
    if state == account.state:
        return None
    return PaymentAccount(
        organization_id=account.organization_id,
        provider=account.provider,
        account_id=account.account_id,
        charges_enabled=state.charges_enabled,
        payouts_enabled=state.payouts_enabled,
        details_submitted=state.details_submitted,
        version=account.version + 1,
    )


def platform_fee(amount: int, fee_bps: int) -> int:
    """The platform's share of a charge in minor units, rounded down (the seller is never
    charged a fraction more than the rate): ``platform_fee(4900, 250) == 122``."""
    if not 0 <= fee_bps <= MAX_PLATFORM_FEE_BPS:
        raise ValueError(f"a platform fee is 0..{MAX_PLATFORM_FEE_BPS} basis points: {fee_bps}")
    return amount * fee_bps // 10_000


class PaymentsNotEnabled(Conflict):
    """A paid checkout of an organization whose payment account cannot take charges yet."""

    code = "PAYMENTS_NOT_ENABLED"


def chargeable(account: PaymentAccount | None, provider: ProviderName) -> PaymentAccount:
    """The account a paid checkout charges on; refuse when the seller cannot be paid yet."""
    if account is None or account.provider != provider:
        raise PaymentsNotEnabled(
            "This seller cannot take payments yet: its staff has not set up a payment account"
        )
    if not account.charges_enabled:
        raise PaymentsNotEnabled(
            "This seller cannot take payments yet: the payment provider has not enabled"
            " charges on its account (onboarding unfinished or under review)"
        )
    return account


class UnknownConnectedAccount(NotFound):
    """A verified provider event for an account no organization of ours holds."""

    code = "UNKNOWN_CONNECTED_ACCOUNT"


class ConnectedAccountMissing(Unprocessable):
    """A verified payment event that names no connected account: with one platform endpoint for
    every organization, the account is how the event's organization is known."""

    code = "WEBHOOK_ACCOUNT_MISSING"
