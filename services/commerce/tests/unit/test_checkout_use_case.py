"""The checkout use case against in-memory stores: one decision, the fast store for a new
free entitlement, the transactional store for everything else."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from commerce_fakes import (
    NOW,
    FakeCheckoutStore,
    FakeFastStore,
    FakeProvider,
    Memory,
)

from coursemesh.chassis.errors import BadRequest, NotFound, Unprocessable
from coursemesh.commerce.app.checkout import Checkout
from coursemesh.commerce.app.ports import META_ENTITLEMENT, META_TRANSACTION
from coursemesh.commerce.domain.checkout import Buyer, Offer
from coursemesh.commerce.domain.entitlements import CourseAlreadyOwned, open_for_checkout

BUYER = Buyer("user_buyer", "buyer@example.com")
LEAD_CREATED = "commerce.lead.created.v1"
#: one change of an entitlement: v1 (for the previous release's consumers) and v2
ENTITLEMENT_CHANGED = ("commerce.entitlement.changed.v1", "commerce.entitlement.changed.v2")
TTL = timedelta(hours=24)
BASE = "https://commerce.coursemesh.example"


class Shop:
    """A seller whose payment account takes charges (``account=False``: none yet)."""

    def __init__(self, *, account: bool = True, fee_bps: int = 0) -> None:
        self.memory = Memory()
        self.fast = FakeFastStore(self.memory)
        self.store = FakeCheckoutStore(self.memory)
        self.provider = FakeProvider()
        self.checkout = Checkout(
            fast=self.fast,
            store=self.store,
            provider=self.provider,
            checkout_ttl=TTL,
            public_base_url=BASE,
            platform_fee_bps=fee_bps,
            clock=lambda: NOW,
        )
        self.org = self.memory.organization()
        if account:
            self.memory.account(self.org)


@pytest.fixture
def shop() -> Shop:
    return Shop()


async def test_a_new_free_checkout_is_written_whole_by_the_fast_store(shop: Shop) -> None:
    course = shop.memory.course(shop.org, price=0)
    answer = await shop.checkout.course(course, BUYER, None)
    assert answer.payment_page_url is None
    assert answer.payment_id is None
    ent = shop.memory.entitlement_of(BUYER.user_id, course)
    assert ent is not None
    assert ent.id == answer.entitlement_id
    assert (ent.status, ent.version, ent.membership_id, ent.buyer_email) == (
        "active",
        1,
        None,
        BUYER.email,
    )
    assert shop.fast.saves == ["saved"]
    assert shop.store.opened == 0  # no transaction at all
    # a buyer who is not a member of the seller's organization becomes its lead
    lead_id = shop.memory.leads[BUYER.user_id]
    assert shop.memory.links == {(shop.org, lead_id)}
    assert shop.memory.event_types() == [LEAD_CREATED, *ENTITLEMENT_CHANGED]
    [t] = shop.memory.transitions
    assert (t.previous_status, t.cause, t.actor) == (None, "free_checkout", f"user:{BUYER.user_id}")


async def test_a_member_of_the_seller_gets_the_membership_and_no_lead(shop: Shop) -> None:
    course = shop.memory.course(shop.org, price=0)
    membership = uuid.uuid4()
    shop.memory.memberships[(shop.org, BUYER.user_id)] = membership
    await shop.checkout.course(course, BUYER, None)
    ent = shop.memory.entitlement_of(BUYER.user_id, course)
    assert ent is not None
    assert ent.membership_id == membership
    assert shop.memory.leads == {}
    assert shop.memory.event_types() == [*ENTITLEMENT_CHANGED]


async def test_a_known_lead_is_linked_to_a_second_seller_under_its_own_id(shop: Shop) -> None:
    first = shop.memory.course(shop.org, price=0)
    other = shop.memory.organization("Other Studio")
    second = shop.memory.course(other, price=0)
    await shop.checkout.course(first, BUYER, None)
    lead_id = shop.memory.leads[BUYER.user_id]
    await shop.checkout.course(second, BUYER, None)
    assert shop.memory.leads == {BUYER.user_id: lead_id}
    assert shop.memory.links == {(shop.org, lead_id), (other, lead_id)}
    created = [e for e in shop.memory.events if e.type == LEAD_CREATED]
    assert [(e.payload.lead_id, e.payload.organization_id) for e in created] == [  # type: ignore[attr-defined]
        (lead_id, shop.org),
        (lead_id, other),
    ]


async def test_a_paid_checkout_opens_a_pending_entitlement_and_a_payment(shop: Shop) -> None:
    course = shop.memory.course(shop.org, price=4900)
    answer = await shop.checkout.course(course, BUYER, None)
    assert shop.fast.saves == []  # the fast store writes only new free entitlements
    ent = shop.memory.entitlement_of(BUYER.user_id, course)
    assert ent is not None
    assert ent.status == "pending"
    assert answer.entitlement_id == ent.id
    [payment] = shop.memory.payments.values()
    assert (payment.amount_in_cents, payment.currency, payment.entitlement_id) == (
        4900,
        "USD",
        ent.id,
    )
    assert answer.payment_page_url == "https://pay.example.com/pay/sbx_1"
    assert answer.payment_id == payment.id  # the return pages' session
    assert payment.provider_transaction_id == "sbx_1"
    [request] = shop.provider.requests
    assert request.metadata == {META_TRANSACTION: str(payment.id), META_ENTITLEMENT: str(ent.id)}
    assert (request.expires_at, request.seller_name, request.description) == (
        NOW + TTL,
        "Peak Form Studio",
        "30-day reset",
    )


async def test_an_owned_course_is_409_and_changes_nothing(shop: Shop) -> None:
    course = shop.memory.course(shop.org, price=0)
    await shop.checkout.course(course, BUYER, None)
    before = shop.memory.snapshot()
    with pytest.raises(CourseAlreadyOwned) as refused:
        await shop.checkout.course(course, BUYER, None)
    assert (refused.value.status, refused.value.code) == (409, "COURSE_ALREADY_OWNED")
    assert shop.memory.snapshot() == before


@pytest.mark.parametrize("ended", ["pending", "revoked"])
async def test_a_pending_or_revoked_row_is_reopened_by_the_transactional_store(
    shop: Shop, ended: str
) -> None:
    course = shop.memory.course(shop.org, price=0)
    old = open_for_checkout(
        None,
        new_id=uuid.uuid4(),
        user_id=BUYER.user_id,
        course_id=course,
        organization_id=shop.org,
        membership_id=None,
        buyer_email=BUYER.email,
        free=False,
        now=NOW,
    ).entitlement
    from dataclasses import replace

    shop.memory.entitlements[old.id] = replace(old, status=ended, version=3)  # type: ignore[arg-type]
    answer = await shop.checkout.course(course, BUYER, None)
    assert answer.entitlement_id == old.id
    assert shop.fast.saves == []
    assert shop.store.opened == 1
    ent = shop.memory.entitlements[old.id]
    assert (ent.status, ent.version, ent.access_revoked_at) == ("active", 4, None)
    [t] = shop.memory.transitions
    assert (t.previous_status, t.cause) == (ended, "free_checkout")


@pytest.mark.parametrize("status", ["draft", "archived", None])
async def test_an_unavailable_course_is_404(shop: Shop, status: str | None) -> None:
    course = (
        uuid.uuid4() if status is None else shop.memory.course(shop.org, price=0, status=status)
    )
    with pytest.raises(NotFound) as refused:
        await shop.checkout.course(course, BUYER, None)
    assert refused.value.code == "COURSE_NOT_FOUND"
    assert shop.memory.entitlements == {}
    assert shop.memory.events == []


async def test_a_course_without_an_active_plan_is_400(shop: Shop) -> None:
    course = shop.memory.course(shop.org, price=None)
    with pytest.raises(BadRequest) as refused:
        await shop.checkout.course(course, BUYER, None)
    assert refused.value.code == "NO_ACTIVE_PLAN"
    assert shop.memory.entitlements == {}
    assert shop.memory.events == []


async def test_a_fast_write_that_loses_the_race_is_decided_again_transactionally(
    shop: Shop,
) -> None:
    """Between the fast read and its write, a concurrent checkout of the same buyer takes the
    course: the fast write reports ``lost`` (nothing written) and the transactional store's
    facts lead the same decision to "already owned"."""
    course = shop.memory.course(shop.org, price=0)
    winner: list[uuid.UUID | None] = []

    async def concurrent_checkout() -> None:
        winner.append((await shop.checkout.course(course, BUYER, None)).entitlement_id)

    shop.fast.between_read_and_write = concurrent_checkout
    with pytest.raises(CourseAlreadyOwned):
        await shop.checkout.course(course, BUYER, None)
    assert shop.fast.saves == ["saved", "lost"]
    assert shop.store.opened == 1
    assert [e.id for e in shop.memory.entitlements.values()] == winner
    assert shop.memory.event_types() == [LEAD_CREATED, *ENTITLEMENT_CHANGED]


async def test_a_lost_lead_race_still_checks_out_through_the_transactional_store(
    shop: Shop,
) -> None:
    """The concurrent checkout was of another course: it made the buyer's lead. The fast write
    loses on the lead; the transactional store reuses it and writes the entitlement."""
    course = shop.memory.course(shop.org, price=0)
    other = shop.memory.course(shop.org, price=0)

    async def concurrent_checkout() -> None:
        await shop.checkout.course(other, BUYER, None)

    shop.fast.between_read_and_write = concurrent_checkout
    answer = await shop.checkout.course(course, BUYER, None)
    assert shop.fast.saves == ["saved", "lost"]
    ent = shop.memory.entitlement_of(BUYER.user_id, course)
    assert ent is not None
    assert (ent.id, ent.status) == (answer.entitlement_id, "active")
    assert len(shop.memory.leads) == 1
    assert len(shop.memory.links) == 1
    assert shop.memory.event_types() == [LEAD_CREATED, *ENTITLEMENT_CHANGED, *ENTITLEMENT_CHANGED]


async def test_an_idempotency_key_replays_its_answer_and_refuses_another_request(
    shop: Shop,
) -> None:
    course = shop.memory.course(shop.org, price=4900)
    first = await shop.checkout.course(course, BUYER, "key-1")
    again = await shop.checkout.course(course, BUYER, "key-1")
    assert first == again
    assert len(shop.memory.entitlements) == len(shop.memory.payments) == 1
    other = shop.memory.course(shop.org, price=0)
    before = shop.memory.snapshot()
    with pytest.raises(Unprocessable) as refused:
        await shop.checkout.course(other, BUYER, "key-1")
    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert shop.memory.snapshot() == before


async def test_a_free_offer_is_purchased_at_once_and_a_paid_one_opens_a_payment(
    shop: Shop,
) -> None:
    free = Offer(uuid.uuid4(), shop.org, "XFREE1", "Custom plan", 0, "USD")
    paid = Offer(uuid.uuid4(), shop.org, "XPAID1", "Coaching", 9900, "USD")
    shop.memory.offers = {free.code: free, paid.code: paid}
    answer = await shop.checkout.offer(free.code, BUYER, None)
    assert answer.payment_page_url is None
    assert answer.payment_id is None
    assert answer.purchase_id is not None
    assert shop.memory.purchases[answer.purchase_id].status == "paid"
    assert shop.memory.event_types() == [LEAD_CREATED, "commerce.custom_course.purchased.v1"]
    answer = await shop.checkout.offer(paid.code, BUYER, None)
    assert answer.payment_page_url is not None
    assert answer.purchase_id is not None
    assert shop.memory.purchases[answer.purchase_id].status == "pending"
    [payment] = shop.memory.payments.values()
    assert answer.payment_id == payment.id
    assert len(shop.memory.events) == 2  # the lead was linked already; paid: at completion
    with pytest.raises(NotFound) as refused:
        await shop.checkout.offer("XNONE1", BUYER, None)
    assert refused.value.code == "OFFER_NOT_FOUND"
