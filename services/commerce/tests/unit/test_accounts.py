"""Sellers' payment accounts, pure: where an organization stands, what the provider's newer
state changes, the platform's fee and which accounts a paid checkout may charge on."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from coursemesh.commerce.domain.accounts import (
    MAX_PLATFORM_FEE_BPS,
    AccountState,
    PaymentAccount,
    PaymentsNotEnabled,
    account_after,
    account_status,
    chargeable,
    platform_fee,
)
from coursemesh.contracts.types import PaymentProvider as ProviderName

ACCOUNT = PaymentAccount(
    organization_id=uuid.uuid4(),
    provider="stripe",
    account_id="acct_1",
    charges_enabled=False,
    payouts_enabled=False,
    details_submitted=False,
    version=3,
)


@pytest.mark.parametrize(
    ("charges", "details", "status"),
    [
        (False, False, "onboarding"),
        (False, True, "pending_verification"),
        (True, True, "enabled"),
        (True, False, "enabled"),  # charges enabled is what counts
    ],
)
def test_account_status_of_each_state(charges: bool, details: bool, status: str) -> None:
    account = replace(ACCOUNT, charges_enabled=charges, details_submitted=details)
    assert account_status(account) == status


def test_no_account_is_not_started() -> None:
    assert account_status(None) == "not_started"


def test_an_account_state_is_what_the_provider_says_of_it() -> None:
    assert ACCOUNT.state == AccountState("acct_1", False, False, False)


def test_the_same_state_again_changes_nothing() -> None:
    assert account_after(ACCOUNT, AccountState("acct_1", False, False, False)) is None


def test_a_newer_state_is_the_next_version_of_the_account() -> None:
    changed = account_after(ACCOUNT, AccountState("acct_1", True, False, True))
    assert changed == replace(
        ACCOUNT, charges_enabled=True, payouts_enabled=False, details_submitted=True, version=4
    )
    # its organization, provider and account id stay
    assert changed is not None
    assert (changed.organization_id, changed.provider, changed.account_id) == (
        ACCOUNT.organization_id,
        "stripe",
        "acct_1",
    )
    assert account_after(changed, changed.state) is None


@pytest.mark.parametrize(
    ("amount", "bps", "fee"),
    [
        (4900, 250, 122),  # 122.5 rounds down
        (4900, 0, 0),
        (1, 250, 0),
        (199, 100, 1),  # 1.99 rounds down
        (10_000, 1, 1),
        (9999, 1, 0),
        (4900, MAX_PLATFORM_FEE_BPS, 2450),
        (0, 250, 0),
    ],
)
def test_the_platform_fee_is_rounded_down(amount: int, bps: int, fee: int) -> None:
    assert platform_fee(amount, bps) == fee


@pytest.mark.parametrize("bps", [-1, MAX_PLATFORM_FEE_BPS + 1, 10_000])
def test_a_platform_fee_outside_its_bounds_is_refused(bps: int) -> None:
    with pytest.raises(ValueError, match="basis points"):
        platform_fee(4900, bps)


def test_an_enabled_account_of_the_provider_is_chargeable() -> None:
    enabled = replace(ACCOUNT, charges_enabled=True)
    assert chargeable(enabled, "stripe") is enabled


@pytest.mark.parametrize(
    ("account", "provider", "why"),
    [
        (None, "stripe", "has not set up a payment account"),
        (ACCOUNT, "stripe", "has not enabled charges"),
        (replace(ACCOUNT, details_submitted=True), "stripe", "has not enabled charges"),
        # an account at another provider is no account there
        (replace(ACCOUNT, charges_enabled=True), "sandbox", "has not set up a payment account"),
    ],
)
def test_a_seller_that_cannot_be_paid_is_409(
    account: PaymentAccount | None, provider: ProviderName, why: str
) -> None:
    with pytest.raises(PaymentsNotEnabled) as refused:
        chargeable(account, provider)
    assert (refused.value.status, refused.value.code) == (409, "PAYMENTS_NOT_ENABLED")
    assert why in refused.value.detail
