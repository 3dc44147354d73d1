"""A paid checkout against in-memory stores: it charges on the seller's own account (refused
while the seller cannot be paid, before anything reaches the provider), takes the platform's
fee, and sends the buyer back only to return URLs the seller's allowlist admits."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from test_checkout_use_case import BASE, BUYER, Shop

from coursemesh.chassis.errors import Unprocessable
from coursemesh.commerce.app.checkout import NO_RETURN, Checkout, CheckoutResponse, ReturnRequest
from coursemesh.commerce.domain.accounts import PaymentsNotEnabled
from coursemesh.commerce.domain.checkout import Offer
from coursemesh.commerce.domain.return_urls import ReturnUrlInvalid, ReturnUrlNotAllowed
from coursemesh.contracts.types import PaymentProvider as ProviderName

ALLOWLIST = ("https://studio.example.com/app", "studioapp:")


@pytest.fixture
def shop() -> Shop:
    return Shop()


def paid_offer(shop: Shop, price: int = 9900) -> Offer:
    offer = Offer(
        uuid.uuid4(), shop.org, f"X{uuid.uuid4().hex[:5].upper()}", "Coaching", price, "USD"
    )
    shop.memory.offers[offer.code] = offer
    return offer


async def check_out(
    shop: Shop,
    kind: str,
    course: uuid.UUID,
    offer: Offer,
    returns: ReturnRequest = NO_RETURN,
) -> CheckoutResponse:
    """The course's checkout or the offer's, by ``kind``."""
    checkout: Checkout = shop.checkout
    if kind == "course":
        return await checkout.course(course, BUYER, None, returns)
    return await checkout.offer(offer.code, BUYER, None, returns)


# --- the seller's account --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["course", "offer"])
async def test_a_paid_checkout_of_a_seller_without_an_account_is_409_and_changes_nothing(
    kind: str,
) -> None:
    shop = Shop(account=False)
    course = shop.memory.course(shop.org, price=4900)
    offer = paid_offer(shop)
    before = shop.memory.snapshot()
    with pytest.raises(PaymentsNotEnabled) as refused:
        await check_out(shop, kind, course, offer)
    assert (refused.value.status, refused.value.code) == (409, "PAYMENTS_NOT_ENABLED")
    assert shop.memory.snapshot() == before
    assert shop.provider.calls() == 0


@pytest.mark.parametrize(
    ("enabled", "provider"),
    [
        (False, "sandbox"),  # onboarding unfinished
        (True, "stripe"),  # an account at another provider
    ],
)
async def test_a_seller_whose_account_takes_no_charges_here_is_409(
    enabled: bool, provider: ProviderName
) -> None:
    shop = Shop(account=False)
    shop.memory.account(shop.org, enabled=enabled, provider=provider)
    course = shop.memory.course(shop.org, price=4900)
    before = shop.memory.snapshot()
    with pytest.raises(PaymentsNotEnabled) as refused:
        await shop.checkout.course(course, BUYER, None)
    assert refused.value.code == "PAYMENTS_NOT_ENABLED"
    assert shop.memory.snapshot() == before
    assert shop.provider.calls() == 0


async def test_an_account_under_review_takes_no_charges(shop: Shop) -> None:
    account = shop.memory.accounts[shop.org]
    shop.memory.accounts[shop.org] = replace(account, charges_enabled=False, details_submitted=True)
    course = shop.memory.course(shop.org, price=4900)
    with pytest.raises(PaymentsNotEnabled):
        await shop.checkout.course(course, BUYER, None)
    assert shop.memory.entitlements == {}
    assert shop.provider.calls() == 0


async def test_a_reopen_refused_for_the_account_expires_no_open_payment(shop: Shop) -> None:
    course = shop.memory.course(shop.org, price=4900)
    await shop.checkout.course(course, BUYER, None)
    [open_payment] = shop.memory.payments.values()
    shop.memory.accounts[shop.org] = replace(shop.memory.accounts[shop.org], charges_enabled=False)
    before = shop.memory.snapshot()
    with pytest.raises(PaymentsNotEnabled):
        await shop.checkout.course(course, BUYER, None)
    assert shop.provider.expired == []
    assert len(shop.provider.requests) == 1
    assert shop.memory.payments[open_payment.id].status == "pending"
    assert shop.memory.snapshot() == before


async def test_a_free_checkout_needs_no_account() -> None:
    shop = Shop(account=False)
    course = shop.memory.course(shop.org, price=0)
    answer = await shop.checkout.course(course, BUYER, None)
    assert answer.payment_page_url is None
    ent = shop.memory.entitlement_of(BUYER.user_id, course)
    assert ent is not None
    assert ent.status == "active"
    free = Offer(uuid.uuid4(), shop.org, "XFREE1", "Custom plan", 0, "USD")
    shop.memory.offers[free.code] = free
    bought = await shop.checkout.offer(free.code, BUYER, None)
    assert bought.purchase_id is not None
    assert shop.memory.purchases[bought.purchase_id].status == "paid"
    assert shop.provider.calls() == 0


# --- the hosted payment on the seller's account -----------------------------------------------


async def test_the_hosted_payment_is_on_the_sellers_account_and_returns_to_the_platform(
    shop: Shop,
) -> None:
    course = shop.memory.course(shop.org, price=4900)
    answer = await shop.checkout.course(course, BUYER, None)
    account = shop.memory.accounts[shop.org]
    [payment] = shop.memory.payments.values()
    [request] = shop.provider.requests
    assert request.account_id == payment.provider_account_id == account.account_id
    assert request.application_fee_in_cents == 0  # no platform fee configured
    assert (request.success_url, request.cancel_url) == (
        f"{BASE}/checkout/success?session={payment.id}",
        f"{BASE}/checkout/cancelled?session={payment.id}",
    )
    assert request.transaction_id == payment.id
    assert shop.memory.payment_pages == {payment.id: answer.payment_page_url}


@pytest.mark.parametrize(("fee_bps", "fee"), [(250, 122), (1000, 490), (1, 0)])
async def test_the_platform_fee_is_taken_from_the_charge_rounded_down(
    fee_bps: int, fee: int
) -> None:
    shop = Shop(fee_bps=fee_bps)
    course = shop.memory.course(shop.org, price=4900)
    await shop.checkout.course(course, BUYER, None)
    offer = paid_offer(shop, price=9900)
    await shop.checkout.offer(offer.code, BUYER, None)
    first, second = shop.provider.requests
    assert (first.amount_in_cents, first.application_fee_in_cents) == (4900, fee)
    assert (second.amount_in_cents, second.application_fee_in_cents) == (
        9900,
        9900 * fee_bps // 10_000,
    )


# --- return URLs -------------------------------------------------------------------------------


async def test_listed_return_urls_are_sent_to_the_provider(shop: Shop) -> None:
    shop.memory.allowlists[shop.org] = ALLOWLIST
    course = shop.memory.course(shop.org, price=4900)
    success = "https://studio.example.com/app/done?session={CHECKOUT_SESSION_ID}"
    await shop.checkout.course(
        course, BUYER, None, ReturnRequest(success, "studioapp://checkout/cancelled")
    )
    [request] = shop.provider.requests
    assert (request.success_url, request.cancel_url) == (
        success,
        "studioapp://checkout/cancelled",
    )


async def test_one_return_url_given_and_the_platform_page_for_the_other(shop: Shop) -> None:
    shop.memory.allowlists[shop.org] = ALLOWLIST
    offer = paid_offer(shop)
    await shop.checkout.offer(
        offer.code, BUYER, None, ReturnRequest(cancel_url="https://studio.example.com/app")
    )
    [payment] = shop.memory.payments.values()
    [request] = shop.provider.requests
    assert (request.success_url, request.cancel_url) == (
        f"{BASE}/checkout/success?session={payment.id}",
        "https://studio.example.com/app",
    )


@pytest.mark.parametrize("kind", ["course", "offer"])
async def test_an_unlisted_success_url_is_422_with_nothing_written_or_opened(
    shop: Shop, kind: str
) -> None:
    shop.memory.allowlists[shop.org] = ALLOWLIST
    course = shop.memory.course(shop.org, price=4900)
    offer = paid_offer(shop)
    returns = ReturnRequest(success_url="https://studio.example.com/apples")
    before = shop.memory.snapshot()
    with pytest.raises(ReturnUrlNotAllowed) as refused:
        await check_out(shop, kind, course, offer, returns)
    assert (refused.value.status, refused.value.code) == (422, "RETURN_URL_NOT_ALLOWED")
    assert refused.value.extra == {"field": "successUrl"}
    assert shop.memory.snapshot() == before
    assert shop.provider.calls() == 0


async def test_return_urls_of_a_seller_without_an_allowlist_are_refused_but_its_pages(
    shop: Shop,
) -> None:
    course = shop.memory.course(shop.org, price=4900)
    with pytest.raises(ReturnUrlNotAllowed):
        await shop.checkout.course(
            course, BUYER, None, ReturnRequest(success_url="https://studio.example.com/app")
        )
    mine = f"{BASE}/checkout/success?from=web"
    await shop.checkout.course(course, BUYER, None, ReturnRequest(success_url=mine))
    [request] = shop.provider.requests
    assert request.success_url == mine


async def test_another_sellers_allowlist_admits_nothing_here(shop: Shop) -> None:
    other = shop.memory.organization("Other Studio")
    shop.memory.allowlists[other] = ALLOWLIST
    course = shop.memory.course(shop.org, price=4900)
    with pytest.raises(ReturnUrlNotAllowed):
        await shop.checkout.course(
            course, BUYER, None, ReturnRequest(success_url="https://studio.example.com/app")
        )
    assert shop.provider.calls() == 0


async def test_a_free_course_with_return_urls_takes_the_transactional_path(shop: Shop) -> None:
    shop.memory.allowlists[shop.org] = ALLOWLIST
    course = shop.memory.course(shop.org, price=0)
    answer = await shop.checkout.course(
        course, BUYER, None, ReturnRequest(success_url="https://studio.example.com/app/done")
    )
    assert answer.payment_page_url is None
    assert shop.fast.saves == []
    assert shop.store.opened == 1
    ent = shop.memory.entitlement_of(BUYER.user_id, course)
    assert ent is not None
    assert (ent.id, ent.status) == (answer.entitlement_id, "active")
    assert shop.provider.calls() == 0


@pytest.mark.parametrize(
    ("returns", "error"),
    [
        (ReturnRequest(success_url="https://evil.example.com/"), ReturnUrlNotAllowed),
        (ReturnRequest(cancel_url="javascript:alert(1)"), ReturnUrlInvalid),
    ],
)
async def test_a_free_course_checks_its_return_urls_too(
    shop: Shop, returns: ReturnRequest, error: type[Unprocessable]
) -> None:
    shop.memory.allowlists[shop.org] = ALLOWLIST
    course = shop.memory.course(shop.org, price=0)
    before = shop.memory.snapshot()
    with pytest.raises(error):
        await shop.checkout.course(course, BUYER, None, returns)
    assert shop.fast.saves == []
    assert shop.memory.snapshot() == before


async def test_an_idempotency_key_is_bound_to_the_return_urls_too(shop: Shop) -> None:
    shop.memory.allowlists[shop.org] = ALLOWLIST
    course = shop.memory.course(shop.org, price=4900)
    returns = ReturnRequest(success_url="https://studio.example.com/app/done")
    first = await shop.checkout.course(course, BUYER, "key-1", returns)
    assert await shop.checkout.course(course, BUYER, "key-1", returns) == first
    assert len(shop.provider.requests) == 1
    with pytest.raises(Unprocessable) as refused:
        await shop.checkout.course(course, BUYER, "key-1")
    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"
    with pytest.raises(Unprocessable):
        await shop.checkout.course(
            course, BUYER, "key-1", ReturnRequest(success_url="https://studio.example.com/app")
        )
    assert len(shop.provider.requests) == 1
