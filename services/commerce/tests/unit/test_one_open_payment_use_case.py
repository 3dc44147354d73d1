"""One open payment per entitlement: a new checkout of a pending row expires the previous
session and supersedes its payment; a late payment of a superseded session (or of an
entitlement already active through another payment) is refunded, never applied."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from commerce_fakes import NOW, FakeCheckoutStore, FakeFastStore, FakeProvider, Memory
from test_checkout_use_case import BASE, TTL
from test_webhooks_use_case import Seller, event

from coursemesh.commerce.app.checkout import Checkout
from coursemesh.commerce.app.ports import PaymentProviderUnavailable
from coursemesh.commerce.domain.checkout import Buyer, PreviousPaymentCompleted
from coursemesh.commerce.domain.payments import (
    Payment,
    late_payment,
    payments_to_supersede,
)

BUYER = Buyer("user_buyer", "buyer@example.com")
REFUNDED = "commerce.payment.refunded.v1"


class Shop:
    def __init__(self) -> None:
        self.memory = Memory()
        self.provider = FakeProvider()
        self.checkout = Checkout(
            fast=FakeFastStore(self.memory),
            store=FakeCheckoutStore(self.memory),
            provider=self.provider,
            checkout_ttl=TTL,
            public_base_url=BASE,
            clock=lambda: NOW,
        )
        self.org = self.memory.organization()
        self.account = self.memory.account(self.org)

    def payments(self) -> list[Payment]:
        return list(self.memory.payments.values())


@pytest.fixture
def shop() -> Shop:
    return Shop()


@pytest.fixture
def seller() -> Seller:
    return Seller()


# --- the decisions --------------------------------------------------------------------------


def test_only_the_pending_payments_of_an_entitlement_are_superseded(seller: Seller) -> None:
    _, open_one = seller.pending()
    ended = [replace(open_one, id=uuid.uuid4(), status=s) for s in ("failed", "superseded")]
    assert payments_to_supersede([*ended, open_one]) == [open_one]
    assert payments_to_supersede(ended) == []


def test_which_completions_are_late(seller: Seller) -> None:
    ent, payment = seller.pending()
    assert late_payment(ent, payment, event(payment, "completed")) is None
    superseded = replace(payment, status="superseded")
    assert late_payment(ent, superseded, event(payment, "completed")) == "late_payment_superseded"
    assert late_payment(ent, superseded, event(payment, "expired")) is None
    active_elsewhere = replace(ent, status="active", source_payment_transaction_id=uuid.uuid4())
    assert (
        late_payment(active_elsewhere, payment, event(payment, "completed"))
        == "late_payment_already_active"
    )
    # the completion that activated it, replayed: not late
    mine = replace(ent, status="active", source_payment_transaction_id=payment.id)
    done = replace(payment, status="completed")
    assert late_payment(mine, done, event(payment, "completed")) is None
    refunded = replace(payment, status="refunded", status_reason="late_payment_superseded")
    assert late_payment(ent, refunded, event(payment, "completed")) == "refunded_already"


# --- checkout -------------------------------------------------------------------------------


async def test_a_second_checkout_expires_the_first_session_and_supersedes_its_payment(
    shop: Shop,
) -> None:
    course = shop.memory.course(shop.org, price=4900)
    first = await shop.checkout.course(course, BUYER, None)
    [old] = shop.payments()
    second = await shop.checkout.course(course, BUYER, None)
    assert first.entitlement_id == second.entitlement_id
    assert shop.provider.expired == [old.provider_transaction_id]
    [new] = [p for p in shop.payments() if p.id != old.id]
    gone = shop.memory.payments[old.id]
    assert (gone.status, gone.status_reason, gone.version) == ("superseded", "superseded", 2)
    assert shop.memory.superseded_by[old.id] == new.id
    assert new.status == "pending"
    assert shop.memory.payment_transitions == [
        (old.id, "pending", "superseded", "superseded", BUYER.user_id)
    ]
    # a third checkout expires only the second session: the first is no longer open
    await shop.checkout.course(course, BUYER, None)
    assert shop.provider.expired == [old.provider_transaction_id, new.provider_transaction_id]
    # each on the seller's account it was opened on
    assert shop.provider.expired_on == [shop.account.account_id] * 2


async def test_a_previous_payment_the_provider_reports_paid_refuses_the_checkout(
    shop: Shop,
) -> None:
    course = shop.memory.course(shop.org, price=4900)
    await shop.checkout.course(course, BUYER, None)
    [old] = shop.payments()
    assert old.provider_transaction_id is not None
    shop.provider.expiries[old.provider_transaction_id] = "completed"
    before = shop.memory.snapshot()
    with pytest.raises(PreviousPaymentCompleted) as refused:
        await shop.checkout.course(course, BUYER, None)
    assert (refused.value.status, refused.value.code) == (409, "PREVIOUS_PAYMENT_COMPLETED")
    assert shop.memory.snapshot() == before
    assert len(shop.provider.requests) == 1  # no second hosted payment


async def test_a_provider_failure_while_expiring_is_502_and_changes_nothing(shop: Shop) -> None:
    course = shop.memory.course(shop.org, price=4900)
    await shop.checkout.course(course, BUYER, None)
    shop.provider.failure = PaymentProviderUnavailable("Stripe could not expire (HTTP 500)")
    before = shop.memory.snapshot()
    with pytest.raises(PaymentProviderUnavailable) as failed:
        await shop.checkout.course(course, BUYER, None)
    assert (failed.value.status, failed.value.code) == (502, "PAYMENT_PROVIDER_UNAVAILABLE")
    assert shop.memory.snapshot() == before
    assert len(shop.provider.requests) == 1


async def test_a_free_reopen_still_expires_the_open_payment(shop: Shop) -> None:
    course = shop.memory.course(shop.org, price=4900)
    await shop.checkout.course(course, BUYER, None)
    [old] = shop.payments()
    shop.memory.plans[course] = replace(shop.memory.plans[course], price_in_cents=0)
    answer = await shop.checkout.course(course, BUYER, None)
    assert answer.payment_page_url is None
    assert shop.provider.expired == [old.provider_transaction_id]
    assert shop.memory.payments[old.id].status == "superseded"
    assert shop.memory.superseded_by[old.id] is None
    assert len(shop.payments()) == 1


async def test_a_first_paid_checkout_expires_nothing(shop: Shop) -> None:
    course = shop.memory.course(shop.org, price=4900)
    await shop.checkout.course(course, BUYER, None)
    assert shop.provider.expired == []
    assert shop.memory.payment_transitions == []


# --- late payments --------------------------------------------------------------------------


async def test_a_late_payment_of_a_superseded_session_is_refunded_not_applied(
    seller: Seller,
) -> None:
    ent, old = seller.pending()
    seller.memory.payments[old.id] = replace(old, status="superseded", version=2)
    new = seller.payment(entitlement_id=ent.id)
    completed = event(old, "completed", provider_payment_id="pi_late")
    assert await seller.webhooks.handle(completed) == "applied"
    [refund] = seller.provider.refunds
    assert (
        refund.transaction_id,
        refund.account_id,
        refund.provider_payment_id,
        refund.reason,
    ) == (old.id, seller.account.account_id, "pi_late", "late_payment_superseded")
    late = seller.memory.payments[old.id]
    assert (late.status, late.status_reason, late.version) == (
        "refunded",
        "late_payment_superseded",
        3,
    )
    assert seller.memory.payment_transitions == [
        (old.id, "superseded", "refunded", "late_payment_superseded", "provider-webhook")
    ]
    assert seller.memory.entitlements[ent.id] == ent  # still pending on the new payment
    assert seller.memory.payments[new.id].status == "pending"
    assert seller.memory.receipts == {}
    assert seller.nudged == 0
    [published] = seller.memory.events
    assert (published.type, published.aggregate_version) == (REFUNDED, 3)
    assert published.payload.transaction_id == old.id  # type: ignore[attr-defined]
    # the replay changes nothing; another completion event of the refunded payment neither
    before = seller.memory.snapshot()
    assert await seller.webhooks.handle(completed) == "duplicate"
    again = replace(completed, provider_event_id="evt_other")
    assert await seller.webhooks.handle(again) == "applied"
    assert len(seller.provider.refunds) == 1
    after = seller.memory.snapshot()
    assert after["webhook_events"] - before["webhook_events"] == {("sandbox", "evt_other")}
    recorded = {"webhook_events", "event_organizations"}
    assert {k: v for k, v in after.items() if k not in recorded} == {
        k: v for k, v in before.items() if k not in recorded
    }


async def test_a_payment_of_an_entitlement_active_through_another_is_refunded(
    seller: Seller,
) -> None:
    ent, first = seller.pending()
    second = seller.payment(entitlement_id=ent.id)
    assert await seller.webhooks.handle(event(first, "completed")) == "applied"
    active = seller.memory.entitlements[ent.id]
    assert (active.status, active.source_payment_transaction_id) == ("active", first.id)
    assert await seller.webhooks.handle(event(second, "completed")) == "applied"
    [refund] = seller.provider.refunds
    assert (refund.transaction_id, refund.reason) == (second.id, "late_payment_already_active")
    assert seller.memory.entitlements[ent.id] == active
    assert list(seller.memory.receipts) == [first.id]
    assert seller.memory.event_types().count("commerce.payment.completed.v1") == 1
    # the provider's refund webhook for it later: the entitlement stays active
    assert await seller.webhooks.handle(event(second, "refunded")) == "applied"
    assert seller.memory.entitlements[ent.id] == active


@pytest.mark.parametrize("outcome", ["expired", "failed"])
async def test_the_end_of_a_superseded_session_leaves_the_new_checkout_pending(
    seller: Seller, outcome: str
) -> None:
    ent, old = seller.pending()
    seller.memory.payments[old.id] = replace(old, status="superseded", version=2)
    assert await seller.webhooks.handle(event(old, outcome)) == "applied"
    assert seller.memory.entitlements[ent.id] == ent
    assert seller.memory.payments[old.id].status == "superseded"
    assert seller.memory.events == []


async def test_a_refund_the_provider_fails_rolls_the_webhook_back(seller: Seller) -> None:
    _, old = seller.pending()
    seller.memory.payments[old.id] = replace(old, status="superseded", version=2)
    seller.provider.failure = PaymentProviderUnavailable("Stripe could not refund (HTTP 503)")
    before = seller.memory.snapshot()
    with pytest.raises(PaymentProviderUnavailable):
        await seller.webhooks.handle(event(old, "completed"))
    assert seller.memory.snapshot() == before  # event id not recorded: delivered again later
