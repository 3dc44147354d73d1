"""A seller's payment settings against an in-memory store and provider: onboarding opens one
account and refreshes it later, only owners and admins change money settings, and every URL a
seller is sent back to is checked against the organization's allowlist."""

from __future__ import annotations

import pytest
from commerce_fakes import NOW, FakeAccountStore, FakeProvider, Memory

from coursemesh.chassis.errors import Conflict, Forbidden, NotFound
from coursemesh.commerce.app.seller_payments import SellerPayments
from coursemesh.commerce.domain.accounts import AccountState, PaymentAccount
from coursemesh.commerce.domain.return_urls import ReturnUrlInvalid, ReturnUrlNotAllowed

BASE = "https://commerce.coursemesh.example"
OWNER, TRAINER, STRANGER = "user_owner", "user_trainer", "user_stranger"
DONE = f"{BASE}/payments/onboarding/return"
EXPIRED = f"{BASE}/payments/onboarding/refresh"


class Org:
    def __init__(self) -> None:
        self.memory = Memory()
        self.provider = FakeProvider()
        self.payments = SellerPayments(
            FakeAccountStore(self.memory),
            self.provider,
            public_base_url=BASE + "/",
            clock=lambda: NOW,
        )
        self.id = self.memory.organization("Peak Form Studio")
        self.memory.admin(self.id, OWNER)
        self.memory.staff.add((self.id, TRAINER))

    def account(self) -> PaymentAccount:
        account: PaymentAccount = self.memory.accounts[self.id]
        return account


@pytest.fixture
def org() -> Org:
    return Org()


# --- onboarding ------------------------------------------------------------------------------


async def test_the_first_onboarding_opens_one_account_and_links_to_it(org: Org) -> None:
    onboarding = await org.payments.onboard(org.id, OWNER)
    assert org.provider.created == [(org.id, "Peak Form Studio")]
    assert org.provider.retrieved == []
    account = org.account()
    assert onboarding.account == account
    assert (account.provider, account.account_id, account.version) == ("sandbox", "acct_fake1", 1)
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (
        False,
        False,
        False,
    )
    assert org.provider.links == [("acct_fake1", DONE, EXPIRED)]
    assert onboarding.link.url == "https://connect.example.com/setup/acct_fake1/1"


async def test_a_second_onboarding_refreshes_the_account_and_opens_no_other(org: Org) -> None:
    first = await org.payments.onboard(org.id, OWNER)
    # nothing changed at the provider: the account is read back, not written
    again = await org.payments.onboard(org.id, OWNER)
    assert len(org.provider.created) == 1
    assert org.provider.retrieved == ["acct_fake1"]
    assert again.account == first.account == org.account()
    assert len(org.provider.links) == 2  # a fresh link each time
    assert again.link.url != first.link.url
    # the seller finished onboarding and the provider enabled charges (its webhook not here yet)
    org.provider.accounts["acct_fake1"] = AccountState("acct_fake1", True, True, True)
    third = await org.payments.onboard(org.id, OWNER)
    assert len(org.provider.created) == 1
    enabled = org.account()
    assert third.account == enabled
    assert (enabled.account_id, enabled.charges_enabled, enabled.version) == ("acct_fake1", True, 2)
    assert [link[0] for link in org.provider.links] == ["acct_fake1"] * 3


async def test_an_account_at_another_provider_is_409_and_opens_nothing(org: Org) -> None:
    org.memory.account(org.id, provider="stripe", account_id="acct_stripe")
    before = org.memory.snapshot()
    with pytest.raises(Conflict) as refused:
        await org.payments.onboard(org.id, OWNER)
    assert refused.value.code == "PAYMENT_ACCOUNT_AT_ANOTHER_PROVIDER"
    assert org.provider.calls() == 0
    assert org.memory.snapshot() == before


async def test_a_trainer_may_not_onboard_403(org: Org) -> None:
    with pytest.raises(Forbidden) as refused:
        await org.payments.onboard(org.id, TRAINER)
    assert (refused.value.status, refused.value.code) == (403, "ORGANIZATION_ADMIN_REQUIRED")
    assert org.memory.accounts == {}
    assert org.provider.calls() == 0


async def test_someone_not_staff_gets_404_even_as_an_admin_elsewhere(org: Org) -> None:
    other = org.memory.organization("Other Studio")
    org.memory.admin(other, STRANGER)
    for user in (STRANGER, "user_nobody"):
        with pytest.raises(NotFound) as refused:
            await org.payments.onboard(org.id, user)
        assert (refused.value.status, refused.value.code) == (404, "NOT_FOUND")
    # an admin row without the staff membership is no admin
    org.memory.admins.add((org.id, "user_former"))
    with pytest.raises(NotFound):
        await org.payments.onboard(org.id, "user_former")
    assert org.memory.accounts == {}
    assert org.provider.calls() == 0


async def test_onboarding_return_urls_must_be_on_the_allowlist(org: Org) -> None:
    org.memory.allowlists[org.id] = ("https://studio.example.com/settings", "studioapp:")
    await org.payments.onboard(
        org.id,
        OWNER,
        return_to="https://studio.example.com/settings/payments?done=1",
        refresh_to="studioapp://payments/expired",
    )
    assert org.provider.links[-1] == (
        "acct_fake1",
        "https://studio.example.com/settings/payments?done=1",
        "studioapp://payments/expired",
    )
    # the platform's own onboarding pages are always allowed
    await org.payments.onboard(org.id, OWNER, return_to=f"{DONE}?from=app")
    assert org.provider.links[-1] == ("acct_fake1", f"{DONE}?from=app", EXPIRED)


@pytest.mark.parametrize(
    ("urls", "error", "field"),
    [
        ({"return_to": "https://evil.example.com/"}, ReturnUrlNotAllowed, "returnUrl"),
        ({"refresh_to": "https://studio.example.com/other"}, ReturnUrlNotAllowed, "refreshUrl"),
        ({"return_to": "javascript:alert(1)"}, ReturnUrlInvalid, None),
    ],
)
async def test_an_onboarding_url_off_the_allowlist_is_422_and_opens_nothing(
    org: Org, urls: dict[str, str], error: type[Exception], field: str | None
) -> None:
    org.memory.allowlists[org.id] = ("https://studio.example.com/settings",)
    before = org.memory.snapshot()
    with pytest.raises(error) as refused:
        await org.payments.onboard(org.id, OWNER, **urls)
    assert isinstance(refused.value, ReturnUrlInvalid | ReturnUrlNotAllowed)
    assert refused.value.status == 422
    if field is not None:
        assert refused.value.extra == {"field": field}
    assert org.provider.calls() == 0  # no account opened for a refused request
    assert org.memory.snapshot() == before


async def test_staff_read_the_account_and_strangers_get_404(org: Org) -> None:
    assert await org.payments.account(org.id, TRAINER) is None
    await org.payments.onboard(org.id, OWNER)
    assert await org.payments.account(org.id, TRAINER) == org.account()
    with pytest.raises(NotFound):
        await org.payments.account(org.id, STRANGER)


# --- the return URL allowlist --------------------------------------------------------------


async def test_an_admin_sets_the_allowlist_checked_and_deduplicated(org: Org) -> None:
    answer = await org.payments.set_return_allowlist(
        org.id,
        OWNER,
        ["https://studio.example.com/app/", "https://STUDIO.example.com/app", "studioapp:"],
    )
    assert answer.organization_id == org.id
    assert answer.urls == ("https://studio.example.com/app/", "studioapp:")
    assert org.memory.allowlists[org.id] == answer.urls
    assert org.memory.allowlist_writes == [(org.id, answer.urls, OWNER, NOW)]
    assert (await org.payments.return_allowlist(org.id, TRAINER)).urls == answer.urls
    # set again: replaced whole
    await org.payments.set_return_allowlist(org.id, OWNER, [])
    assert (await org.payments.return_allowlist(org.id, TRAINER)).urls == ()


async def test_only_an_admin_sets_the_allowlist(org: Org) -> None:
    urls = ["https://studio.example.com"]
    with pytest.raises(Forbidden) as refused:
        await org.payments.set_return_allowlist(org.id, TRAINER, urls)
    assert refused.value.code == "ORGANIZATION_ADMIN_REQUIRED"
    with pytest.raises(NotFound):
        await org.payments.set_return_allowlist(org.id, STRANGER, urls)
    with pytest.raises(NotFound):
        await org.payments.return_allowlist(org.id, STRANGER)
    assert org.memory.allowlists == {}
    assert org.memory.allowlist_writes == []


@pytest.mark.parametrize(
    "urls",
    [
        ["https://studio.example.com", "http://studio.example.com"],
        ["javascript:alert(1)"],
        ["https://studio.example.com/app?x=1"],
        [f"https://s{i}.example.com" for i in range(21)],
    ],
)
async def test_an_invalid_allowlist_is_422_and_keeps_the_old_one(org: Org, urls: list[str]) -> None:
    await org.payments.set_return_allowlist(org.id, OWNER, ["https://studio.example.com"])
    with pytest.raises(ReturnUrlInvalid) as refused:
        await org.payments.set_return_allowlist(org.id, OWNER, urls)
    assert (refused.value.status, refused.value.code) == (422, "RETURN_URL_INVALID")
    assert org.memory.allowlists[org.id] == ("https://studio.example.com",)
    assert len(org.memory.allowlist_writes) == 1
