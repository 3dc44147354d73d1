"""Staff use cases against an in-memory store: the one staff check and what each changes."""

from __future__ import annotations

import uuid

import pytest
from commerce_fakes import FakeStaffStore, Memory

from coursemesh.chassis.errors import Conflict, NotFound
from coursemesh.commerce.app.staff import Staff

TRAINER, OUTSIDER = "user_trainer", "user_outsider"


class Org:
    def __init__(self) -> None:
        self.memory = Memory()
        self.staff = Staff(FakeStaffStore(self.memory))
        self.id = self.memory.organization()
        self.course = self.memory.course(self.id, price=None)
        self.memory.staff.add((self.id, TRAINER))


@pytest.fixture
def org() -> Org:
    return Org()


async def test_someone_who_is_not_staff_of_the_org_gets_404_everywhere(org: Org) -> None:
    before = org.memory.snapshot()
    calls = [
        org.staff.set_price(org.id, org.course, OUTSIDER, 4900, True),
        org.staff.revoke_entitlement(org.id, uuid.uuid4(), OUTSIDER, "test"),
        org.staff.create_offer(org.id, OUTSIDER, "XABCDE", "Plan", 0),
        org.staff.course_entitlements(org.id, org.course, OUTSIDER, 50, 0),
        org.staff.organization_leads(org.id, OUTSIDER, 50, 0),
    ]
    for call in calls:
        with pytest.raises(NotFound) as refused:
            await call
        assert (refused.value.status, refused.value.code) == (404, "NOT_FOUND")
    assert org.memory.snapshot() == before


async def test_staff_prices_a_course_and_the_plan_is_announced(org: Org) -> None:
    plan = await org.staff.set_price(org.id, org.course, TRAINER, 4900, True)
    assert (plan.price_in_cents, plan.currency, plan.version) == (4900, "USD", 1)
    again = await org.staff.set_price(org.id, org.course, TRAINER, 0, True)
    assert (again.id, again.version) == (plan.id, 2)
    assert [e.aggregate_version for e in org.memory.events] == [1, 2]


async def test_price_refusals_course_of_another_org_and_org_not_synced(org: Org) -> None:
    other = org.memory.course(uuid.uuid4(), price=None)
    with pytest.raises(NotFound) as refused:
        await org.staff.set_price(org.id, other, TRAINER, 4900, True)
    assert refused.value.code == "COURSE_NOT_FOUND"
    del org.memory.organizations[org.id]
    with pytest.raises(Conflict) as not_synced:
        await org.staff.set_price(org.id, org.course, TRAINER, 4900, True)
    assert not_synced.value.code == "ORGANIZATION_NOT_SYNCED"
    assert org.memory.plans == {}
    assert org.memory.events == []


async def test_a_taken_offer_code_is_409(org: Org) -> None:
    await org.staff.create_offer(org.id, TRAINER, "XABCDE", "Plan", 0)
    with pytest.raises(Conflict) as taken:
        await org.staff.create_offer(org.id, TRAINER, "XABCDE", "Other", 0)
    assert taken.value.code == "OFFER_CODE_TAKEN"
