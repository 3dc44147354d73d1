"""Consumed events: purchases open a custom course purchase; memberships say who is staff."""

from __future__ import annotations

from typing import Any

from coursemesh.chassis.consumer import Handler
from coursemesh.chassis.db import UnitOfWork
from coursemesh.chassis.memberships import membership_projector
from coursemesh.chassis.rebuild import Projection
from coursemesh.contracts import Envelope, Event
from coursemesh.contracts.catalog import MembershipChanged
from coursemesh.contracts.commerce import CustomCoursePurchased
from coursemesh.customgen.adapters.projections import record_purchase
from coursemesh.customgen.adapters.tables import memberships


async def on_custom_course_purchased(uow: UnitOfWork, env: Envelope[Any]) -> None:
    payload: CustomCoursePurchased = env.payload
    await record_purchase(uow.session, payload)


on_membership_changed = membership_projector(memberships)


HANDLERS: dict[type[Event], Handler] = {
    CustomCoursePurchased: on_custom_course_purchased,
    MembershipChanged: on_membership_changed,
}

#: Rebuildable with ``coursemesh projection rebuild custom-gen memberships``. Not purchases:
#: a purchase row goes on to hold the intake and generation this service owns.
PROJECTIONS = (
    Projection(
        "memberships",
        tables=(memberships,),
        handlers={MembershipChanged: on_membership_changed},
        description="catalog's memberships: who is staff of an organization",
    ),
)
