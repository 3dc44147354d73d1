"""Payment webhooks against an in-memory ledger: what each outcome changes, and the refusals
that change nothing."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from commerce_fakes import NOW, FakeProvider, FakeWebhookStore, Memory

from coursemesh.chassis.errors import Conflict, Forbidden, NotFound, Unprocessable
from coursemesh.commerce.app.ports import META_ENTITLEMENT, META_PURCHASE, META_TRANSACTION
from coursemesh.commerce.app.webhooks import PaymentWebhooks
from coursemesh.commerce.domain.accounts import AccountEvent, AccountState
from coursemesh.commerce.domain.checkout import Offer
from coursemesh.commerce.domain.entitlements import Entitlement
from coursemesh.commerce.domain.payments import Payment, PaymentEvent, Purchase

BUYER = "user_buyer"


class Seller:
    def __init__(self) -> None:
        self.memory = Memory()
        self.provider = FakeProvider()
        self.nudged = 0
        self.webhooks = PaymentWebhooks(
            FakeWebhookStore(self.memory),
            self.provider,
            nudge_receipts=self.nudge,
            clock=lambda: NOW,
        )
        self.org = self.memory.organization()
        self.account = self.memory.account(self.org)
        self.course = self.memory.course(self.org, price=4900)

    def nudge(self) -> None:
        self.nudged += 1

    def pending(self) -> tuple[Entitlement, Payment]:
        ent = Entitlement(
            id=uuid.uuid4(),
            user_id=BUYER,
            course_id=self.course,
            organization_id=self.org,
            status="pending",
            access_revoked_at=None,
            source_payment_transaction_id=None,
            membership_id=None,
            buyer_email="buyer@example.com",
            version=1,
            status_changed_at=NOW,
        )
        payment = self.payment(entitlement_id=ent.id)
        self.memory.entitlements[ent.id] = ent
        return ent, payment

    def payment(self, **link: uuid.UUID) -> Payment:
        payment = Payment(
            id=uuid.uuid4(),
            organization_id=self.org,
            user_id=BUYER,
            entitlement_id=link.get("entitlement_id"),
            custom_course_purchase_id=link.get("purchase_id"),
            amount_in_cents=4900,
            currency="USD",
            provider="sandbox",
            provider_transaction_id=f"sbx_{uuid.uuid4().hex}",
            provider_payment_id=None,
            status="pending",
            buyer_email="buyer@example.com",
            description="30-day reset",
            version=1,
            provider_account_id=self.account.account_id,
        )
        self.memory.payments[payment.id] = payment
        return payment


def event(payment: Payment, outcome: str | None, **changes: object) -> PaymentEvent:
    metadata = {META_TRANSACTION: str(payment.id)}
    if payment.entitlement_id:
        metadata[META_ENTITLEMENT] = str(payment.entitlement_id)
    if payment.custom_course_purchase_id:
        metadata[META_PURCHASE] = str(payment.custom_course_purchase_id)
    base = PaymentEvent(
        provider_event_id=f"evt_{uuid.uuid4().hex}",
        type=f"payment.{outcome}",
        outcome=outcome,  # type: ignore[arg-type]
        provider_transaction_id=payment.provider_transaction_id,
        metadata=metadata,
        amount_in_cents=payment.amount_in_cents,
        currency=payment.currency,
        account_id=payment.provider_account_id,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def seller() -> Seller:
    return Seller()


async def test_a_completion_activates_the_entitlement_and_queues_one_receipt(
    seller: Seller,
) -> None:
    ent, payment = seller.pending()
    completed = event(payment, "completed")
    assert await seller.webhooks.handle(completed) == "applied"
    ent = seller.memory.entitlements[ent.id]
    assert (ent.status, ent.source_payment_transaction_id, ent.version) == (
        "active",
        payment.id,
        2,
    )
    assert seller.memory.payments[payment.id].status == "completed"
    assert seller.memory.event_types() == [
        "commerce.payment.completed.v1",
        "commerce.entitlement.changed.v1",
        "commerce.entitlement.changed.v2",
    ]
    [receipt] = seller.memory.receipts.values()
    assert (receipt.email, receipt.transaction_id) == ("buyer@example.com", payment.id)
    assert "Amount: 49.00 USD" in receipt.body
    assert seller.nudged == 1
    # the same event again: a replay
    assert await seller.webhooks.handle(completed) == "duplicate"
    assert len(seller.memory.events) == 3  # nothing more


async def test_an_event_type_without_an_outcome_is_recorded_and_ignored(seller: Seller) -> None:
    _, payment = seller.pending()
    assert await seller.webhooks.handle(event(payment, None)) == "ignored"
    assert len(seller.memory.webhook_events) == 1
    assert seller.memory.events == []


async def test_a_failure_revokes_a_pending_checkout_and_a_refund_an_active_one(
    seller: Seller,
) -> None:
    ent, payment = seller.pending()
    await seller.webhooks.handle(event(payment, "failed", failure_reason="declined"))
    assert seller.memory.entitlements[ent.id].status == "revoked"
    assert seller.memory.payments[payment.id].status == "failed"
    assert seller.memory.event_types()[0] == "commerce.payment.failed.v1"
    other, paid = seller.pending()
    await seller.webhooks.handle(event(paid, "completed"))
    await seller.webhooks.handle(event(paid, "refunded"))
    assert seller.memory.entitlements[other.id].status == "revoked"
    assert seller.memory.transitions[-1].cause == "payment_refunded"
    assert seller.memory.payments[paid.id].status == "refunded"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"amount_in_cents": 100}, "WEBHOOK_AMOUNT_MISMATCH"),
        ({"currency": "EUR"}, "WEBHOOK_AMOUNT_MISMATCH"),
        ({"provider_transaction_id": "sbx_other"}, "WEBHOOK_PAYMENT_MISMATCH"),
    ],
)
async def test_an_event_that_does_not_match_the_payment_is_422_and_changes_nothing(
    seller: Seller, changes: dict[str, object], code: str
) -> None:
    _, payment = seller.pending()
    before = seller.memory.snapshot()
    with pytest.raises(Unprocessable) as refused:
        await seller.webhooks.handle(event(payment, "completed", **changes))
    assert refused.value.code == code
    assert seller.memory.snapshot() == before  # not even the event id


async def test_a_provider_that_contradicts_the_event_refuses_it(seller: Seller) -> None:
    _, payment = seller.pending()
    seller.provider.contradiction = Conflict("not settled", code="WEBHOOK_SESSION_NOT_SETTLED")
    before = seller.memory.snapshot()
    with pytest.raises(Conflict):
        await seller.webhooks.handle(event(payment, "completed"))
    assert seller.memory.snapshot() == before


async def test_an_event_on_another_organizations_url_is_403_and_an_unknown_purchase_404(
    seller: Seller,
) -> None:
    _, payment = seller.pending()
    before = seller.memory.snapshot()
    with pytest.raises(Forbidden) as refused:
        await seller.webhooks.handle(event(payment, "completed"), uuid.uuid4())
    assert refused.value.code == "WEBHOOK_CROSS_ORG"
    assert seller.memory.snapshot() == before
    stranger = replace(payment, id=uuid.uuid4(), entitlement_id=uuid.uuid4())
    with pytest.raises(NotFound) as unknown:
        await seller.webhooks.handle(event(stranger, "completed"))
    assert unknown.value.code == "UNKNOWN_ENTITLEMENT"
    assert seller.memory.snapshot() == before


async def test_a_completed_offer_purchase_is_paid_and_announced(seller: Seller) -> None:
    offer = Offer(uuid.uuid4(), seller.org, "XPAID1", "Coaching", 4900, "USD")
    seller.memory.offers[offer.code] = offer
    purchase = Purchase(uuid.uuid4(), offer.id, seller.org, BUYER, "pending", 1)
    seller.memory.purchases[purchase.id] = purchase
    payment = seller.payment(purchase_id=purchase.id)
    assert await seller.webhooks.handle(event(payment, "completed")) == "applied"
    assert seller.memory.purchases[purchase.id].status == "paid"
    assert seller.memory.event_types() == [
        "commerce.payment.completed.v1",
        "commerce.custom_course.purchased.v1",
    ]
    assert len(seller.memory.receipts) == 1


# --- connected accounts ------------------------------------------------------------------------


def account_updated(account_id: str, *, charges: bool = True, details: bool = True) -> AccountEvent:
    return AccountEvent(
        provider_event_id=f"evt_{uuid.uuid4().hex}",
        type="account.updated",
        state=AccountState(account_id, charges, charges, details),
    )


async def test_an_account_update_applies_once_and_its_replay_changes_nothing(
    seller: Seller,
) -> None:
    seller.memory.accounts[seller.org] = replace(
        seller.account, charges_enabled=False, payouts_enabled=False, details_submitted=False
    )
    updated = account_updated(seller.account.account_id)
    assert await seller.webhooks.handle(updated) == "applied"
    account = seller.memory.accounts[seller.org]
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (
        True,
        True,
        True,
    )
    assert account.version == 2
    assert seller.memory.event_organizations == {("sandbox", updated.provider_event_id): seller.org}
    before = seller.memory.snapshot()
    assert await seller.webhooks.handle(updated) == "duplicate"
    assert seller.memory.snapshot() == before
    # another event with the state the account already has: recorded, the account unchanged
    same = account_updated(seller.account.account_id)
    assert await seller.webhooks.handle(same, seller.org) == "applied"
    assert seller.memory.accounts[seller.org] == account
    assert seller.memory.events == []  # an account's state is not announced


async def test_an_account_update_can_take_charges_away(seller: Seller) -> None:
    update = account_updated(seller.account.account_id, charges=False, details=True)
    assert await seller.webhooks.handle(update) == "applied"
    account = seller.memory.accounts[seller.org]
    assert (account.charges_enabled, account.details_submitted, account.version) == (
        False,
        True,
        2,
    )


async def test_an_event_of_an_account_no_organization_holds_is_404_and_changes_nothing(
    seller: Seller,
) -> None:
    _, payment = seller.pending()
    before = seller.memory.snapshot()
    for unknown in (
        account_updated("acct_nobody"),
        event(payment, "completed", account_id="acct_nobody"),
    ):
        with pytest.raises(NotFound) as refused:
            await seller.webhooks.handle(unknown)
        assert (refused.value.status, refused.value.code) == (404, "UNKNOWN_CONNECTED_ACCOUNT")
        assert seller.memory.snapshot() == before  # not even the event id


async def test_an_account_of_another_provider_is_unknown(seller: Seller) -> None:
    seller.memory.accounts[seller.org] = replace(seller.account, provider="stripe")
    with pytest.raises(NotFound) as refused:
        await seller.webhooks.handle(account_updated(seller.account.account_id))
    assert refused.value.code == "UNKNOWN_CONNECTED_ACCOUNT"
    assert seller.memory.webhook_events == set()


async def test_an_event_on_the_url_of_another_organization_than_the_accounts_is_403(
    seller: Seller,
) -> None:
    other = seller.memory.organization("Other Studio")
    seller.memory.account(other)
    _, payment = seller.pending()
    before = seller.memory.snapshot()
    for sent in (account_updated(seller.account.account_id), event(payment, "completed")):
        with pytest.raises(Forbidden) as refused:
            await seller.webhooks.handle(sent, other)
        assert (refused.value.status, refused.value.code) == (403, "WEBHOOK_CROSS_ORG")
        assert seller.memory.snapshot() == before
    # on its own organization's URL, the same event applies
    assert await seller.webhooks.handle(event(payment, "completed"), seller.org) == "applied"


async def test_a_payment_event_naming_no_account_is_422_and_changes_nothing(
    seller: Seller,
) -> None:
    _, payment = seller.pending()
    before = seller.memory.snapshot()
    with pytest.raises(Unprocessable) as refused:
        await seller.webhooks.handle(event(payment, "completed", account_id=None))
    assert (refused.value.status, refused.value.code) == (422, "WEBHOOK_ACCOUNT_MISSING")
    assert seller.memory.snapshot() == before
    # an event we would not act on is ignored, with no organization to record it for
    assert await seller.webhooks.handle(event(payment, None, account_id=None)) == "ignored"
    assert seller.memory.snapshot() == before


async def test_an_event_on_one_sellers_account_naming_anothers_entitlement_is_403(
    seller: Seller,
) -> None:
    ent, payment = seller.pending()
    other = seller.memory.organization("Other Studio")
    other_account = seller.memory.account(other)
    other_course = seller.memory.course(other, price=4900)
    theirs = replace(ent, id=uuid.uuid4(), organization_id=other, course_id=other_course)
    seller.memory.entitlements[theirs.id] = theirs
    their_payment = replace(
        payment,
        id=uuid.uuid4(),
        organization_id=other,
        entitlement_id=theirs.id,
        provider_transaction_id=f"sbx_{uuid.uuid4().hex}",
        provider_account_id=other_account.account_id,
    )
    seller.memory.payments[their_payment.id] = their_payment
    before = seller.memory.snapshot()
    # the event happened on this seller's account but names the other's entitlement
    crossing = event(their_payment, "completed", account_id=seller.account.account_id)
    with pytest.raises(Forbidden) as refused:
        await seller.webhooks.handle(crossing)
    assert refused.value.code == "WEBHOOK_CROSS_ORG"
    assert seller.memory.snapshot() == before
    # and an event on this seller's account naming the other's payment for its own entitlement
    mixed = replace(
        event(payment, "completed"),
        metadata={META_TRANSACTION: str(their_payment.id), META_ENTITLEMENT: str(ent.id)},
        provider_transaction_id=their_payment.provider_transaction_id,
    )
    with pytest.raises(Forbidden):
        await seller.webhooks.handle(mixed)
    assert seller.memory.snapshot() == before


async def test_an_event_on_one_sellers_account_naming_anothers_purchase_is_403(
    seller: Seller,
) -> None:
    other = seller.memory.organization("Other Studio")
    seller.memory.account(other)
    offer = Offer(uuid.uuid4(), other, "XOTHER", "Coaching", 4900, "USD")
    seller.memory.offers[offer.code] = offer
    purchase = Purchase(uuid.uuid4(), offer.id, other, BUYER, "pending", 1)
    seller.memory.purchases[purchase.id] = purchase
    payment = replace(
        seller.payment(purchase_id=purchase.id),
        organization_id=other,
        provider_account_id=seller.memory.accounts[other].account_id,
    )
    seller.memory.payments[payment.id] = payment
    before = seller.memory.snapshot()
    with pytest.raises(Forbidden) as refused:
        await seller.webhooks.handle(
            event(payment, "completed", account_id=seller.account.account_id)
        )
    assert refused.value.code == "WEBHOOK_CROSS_ORG"
    assert seller.memory.snapshot() == before
    assert seller.memory.purchases[purchase.id].status == "pending"
