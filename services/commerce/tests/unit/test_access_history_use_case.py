"""The access history against in-memory stores: the steps the other use cases write (checkout,
the provider's webhooks, staff revoke, the sweeper), read back oldest first with who took each
and the payment it is about; the staff check; the buyer's view naming no staff member."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

import pytest
from commerce_fakes import (
    NOW,
    FakeHistoryStore,
    FakeStaffStore,
    FakeSweeperStore,
    FakeWebhookStore,
)
from test_checkout_use_case import BUYER, Shop
from test_webhooks_use_case import event

from coursemesh.chassis.errors import NotFound
from coursemesh.commerce.app.history import AccessHistory
from coursemesh.commerce.app.staff import Staff
from coursemesh.commerce.app.sweeper import expire_abandoned_checkouts
from coursemesh.commerce.app.webhooks import PaymentWebhooks
from coursemesh.commerce.domain.checkout import Buyer
from coursemesh.commerce.domain.history import (
    HistoryEntry,
    RecordedStep,
    classify_actor,
    history_entry,
)

TRAINER, OUTSIDER = "user_trainer", "user_outsider"
TTL = timedelta(hours=24)


class Studio(Shop):
    """A seller with a trainer, and every use case that writes an entitlement's steps."""

    def __init__(self) -> None:
        super().__init__()
        self.memory.staff.add((self.org, TRAINER))
        self.webhooks = PaymentWebhooks(
            FakeWebhookStore(self.memory), self.provider, clock=lambda: NOW
        )
        self.staff = Staff(FakeStaffStore(self.memory), clock=lambda: NOW)
        self.history = AccessHistory(FakeHistoryStore(self.memory))

    async def paid(self, buyer: Buyer = BUYER) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
        """A paid course checked out by ``buyer``: (course, entitlement, payment)."""
        course = self.memory.course(self.org, price=4900)
        answer = await self.checkout.course(course, buyer, None)
        assert answer.entitlement_id is not None
        assert answer.payment_id is not None
        return course, answer.entitlement_id, answer.payment_id

    async def report(self, payment_id: uuid.UUID, outcome: str) -> None:
        assert await self.webhooks.handle(event(self.memory.payments[payment_id], outcome)) == (
            "applied"
        )


@pytest.fixture
def studio() -> Studio:
    return Studio()


def steps_of(items: Sequence[HistoryEntry]) -> list[tuple[str | None, ...]]:
    return [(e.from_status, e.to_status, e.cause, e.actor, e.actor_type, e.reason) for e in items]


async def test_paid_then_completed_then_staff_revoked_reads_back_in_order(studio: Studio) -> None:
    course, ent_id, payment_id = await studio.paid()
    await studio.report(payment_id, "completed")
    await studio.staff.revoke_entitlement(studio.org, ent_id, TRAINER, "chargeback")

    page = await studio.history.entitlement_history(studio.org, ent_id, TRAINER, 0, 50)
    assert (page.entitlement_id, page.total, page.limit, page.offset) == (ent_id, 3, 50, 0)
    assert steps_of(page.items) == [
        (None, "pending", "paid_checkout", f"user:{BUYER.user_id}", "buyer", None),
        ("pending", "active", "payment_completed", "provider-webhook", "provider-webhook", None),
        ("active", "revoked", "staff_revoked", f"user:{TRAINER}", "staff", "chargeback"),
    ]
    assert [e.payment.id if e.payment else None for e in page.items] == [
        payment_id,
        payment_id,
        None,
    ]
    # the linked payment as it stands now, for support staff
    paid = page.items[0].payment
    assert paid is not None
    assert (paid.status, paid.amount_in_cents, paid.currency) == ("completed", 4900, "USD")

    mine = await studio.history.my_course_history(BUYER.user_id, course, 0, 50)
    assert mine.entitlement_id == ent_id
    revoked = mine.items[-1]
    # the buyer learns a staff member revoked it, and why, but not who
    assert (revoked.actor, revoked.actor_type, revoked.reason) == (None, "staff", "chargeback")
    assert [e.actor for e in mine.items[:2]] == [f"user:{BUYER.user_id}", "provider-webhook"]


async def test_a_refund_is_a_provider_step_naming_its_payment(studio: Studio) -> None:
    course, _ent_id, payment_id = await studio.paid()
    await studio.report(payment_id, "completed")
    await studio.report(payment_id, "refunded")
    page = await studio.history.my_course_history(BUYER.user_id, course, 0, 50)
    last = page.items[-1]
    assert (last.from_status, last.to_status, last.cause, last.actor_type) == (
        "active",
        "revoked",
        "payment_refunded",
        "provider-webhook",
    )
    assert last.payment is not None
    assert (last.payment.id, last.payment.status) == (payment_id, "refunded")


async def test_a_failed_payment_names_its_payment(studio: Studio) -> None:
    _course, ent_id, payment_id = await studio.paid()
    await studio.report(payment_id, "failed")
    page = await studio.history.entitlement_history(studio.org, ent_id, TRAINER, 0, 50)
    failed = page.items[-1]
    assert (failed.cause, failed.to_status) == ("payment_failed", "revoked")
    assert failed.payment is not None
    assert failed.payment.id == payment_id


async def test_a_free_checkout_is_one_step_of_the_buyer_without_a_payment(studio: Studio) -> None:
    course = studio.memory.course(studio.org, price=0)
    answer = await studio.checkout.course(course, BUYER, None)
    page = await studio.history.my_course_history(BUYER.user_id, course, 0, 50)
    assert page.entitlement_id == answer.entitlement_id
    assert steps_of(page.items) == [
        (None, "active", "free_checkout", f"user:{BUYER.user_id}", "buyer", None)
    ]
    assert page.items[0].payment is None


async def test_the_sweeper_expiry_is_a_system_step_naming_the_open_payment(
    studio: Studio,
) -> None:
    _course, ent_id, payment_id = await studio.paid()
    sweeper = FakeSweeperStore(studio.memory)
    assert await expire_abandoned_checkouts(sweeper, ttl=TTL, now=NOW + TTL * 2) == 1
    page = await studio.history.entitlement_history(studio.org, ent_id, TRAINER, 0, 50)
    expired = page.items[-1]
    assert (expired.cause, expired.actor, expired.actor_type, expired.reason) == (
        "checkout_expired",
        "system:checkout-sweeper",
        "system",
        "checkout_expired",
    )
    assert expired.payment is not None
    assert expired.payment.id == payment_id


async def test_pages_are_oldest_first_and_count_every_step(studio: Studio) -> None:
    course, ent_id, first = await studio.paid()
    await studio.report(first, "failed")  # revoked
    second = await studio.checkout.course(course, BUYER, None)  # pending again
    assert second.payment_id is not None
    await studio.report(second.payment_id, "completed")  # active
    everything = await studio.history.entitlement_history(studio.org, ent_id, TRAINER, 0, 50)
    assert [e.cause for e in everything.items] == [
        "paid_checkout",
        "payment_failed",
        "paid_checkout",
        "payment_completed",
    ]
    middle = await studio.history.entitlement_history(studio.org, ent_id, TRAINER, 1, 2)
    assert (middle.total, middle.limit, middle.offset) == (4, 2, 1)
    assert middle.items == everything.items[1:3]
    past_the_end = await studio.history.my_course_history(BUYER.user_id, course, 10, 50)
    assert (list(past_the_end.items), past_the_end.total) == ([], 4)


async def test_who_may_not_read_it_gets_404(studio: Studio) -> None:
    course, ent_id, _payment = await studio.paid()
    # not staff of the organization: the neighbours' refusal
    with pytest.raises(NotFound) as outsider:
        await studio.history.entitlement_history(studio.org, ent_id, OUTSIDER, 0, 50)
    assert outsider.value.code == "NOT_FOUND"
    # staff of another organization asking under their own: not theirs
    other = studio.memory.organization("Other Gym")
    studio.memory.staff.add((other, OUTSIDER))
    with pytest.raises(NotFound) as foreign:
        await studio.history.entitlement_history(other, ent_id, OUTSIDER, 0, 50)
    assert foreign.value.code == "ENTITLEMENT_NOT_FOUND"
    with pytest.raises(NotFound) as unknown:
        await studio.history.entitlement_history(studio.org, uuid.uuid4(), TRAINER, 0, 50)
    assert unknown.value.code == "ENTITLEMENT_NOT_FOUND"
    # another buyer's course, and a course nobody bought
    with pytest.raises(NotFound) as not_mine:
        await studio.history.my_course_history(OUTSIDER, course, 0, 50)
    assert not_mine.value.code == "ENTITLEMENT_NOT_FOUND"
    with pytest.raises(NotFound) as none:
        await studio.history.my_course_history(BUYER.user_id, uuid.uuid4(), 0, 50)
    assert none.value.code == "ENTITLEMENT_NOT_FOUND"


@pytest.mark.parametrize(
    ("actor", "cause", "expected"),
    [
        ("user:user_buyer", "paid_checkout", ("user:user_buyer", "buyer")),
        # rows written before actors were prefixed: the buyer's bare id
        ("user_buyer", "free_checkout", ("user:user_buyer", "buyer")),
        ("user:user_trainer", "staff_revoked", ("user:user_trainer", "staff")),
        # a staff member revoking their own purchase is still a staff step
        ("user:user_buyer", "staff_revoked", ("user:user_buyer", "staff")),
        ("provider-webhook", "payment_completed", ("provider-webhook", "provider-webhook")),
        ("system:checkout-sweeper", "checkout_expired", ("system:checkout-sweeper", "system")),
    ],
)
def test_actors_are_normalised_and_classified(
    actor: str, cause: str, expected: tuple[str, str]
) -> None:
    assert classify_actor(actor, cause, "user_buyer") == expected


def test_only_the_buyers_view_hides_a_staff_member() -> None:
    step = RecordedStep(
        at=NOW,
        from_status="active",
        to_status="revoked",
        cause="staff_revoked",
        actor="user:user_trainer",
        reason="chargeback",
        payment=None,
    )
    staff = history_entry(step, buyer_id="user_buyer", viewer="staff")
    buyer = history_entry(step, buyer_id="user_buyer", viewer="buyer")
    assert (staff.actor, staff.actor_type) == ("user:user_trainer", "staff")
    assert buyer == replace(staff, actor=None)
