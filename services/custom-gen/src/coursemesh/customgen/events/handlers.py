"""Consumed events: purchases open a custom course purchase; memberships say who is staff."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert

from coursemesh.chassis.consumer import Handler
from coursemesh.chassis.db import UnitOfWork
from coursemesh.chassis.memberships import membership_projector
from coursemesh.contracts import Envelope, Event
from coursemesh.contracts.catalog import MembershipChanged
from coursemesh.contracts.commerce import CustomCoursePurchased
from coursemesh.customgen.adapters.tables import memberships, purchases


async def on_custom_course_purchased(uow: UnitOfWork, env: Envelope[Any]) -> None:
    payload: CustomCoursePurchased = env.payload
    # A purchase happens once; a repeat (another event id, same purchase) changes nothing.
    await uow.session.execute(
        pg_insert(purchases)
        .values(
            id=payload.purchase_id,
            user_id=payload.user_id,
            organization_id=payload.organization_id,
            offer_id=payload.offer_id,
            course_code=payload.course_code,
            offer_title=payload.offer_title,
            status="awaiting_intake",
            purchased_at=payload.purchased_at,
        )
        .on_conflict_do_nothing(index_elements=[purchases.c.id])
    )


on_membership_changed = membership_projector(memberships)


HANDLERS: dict[type[Event], Handler] = {
    CustomCoursePurchased: on_custom_course_purchased,
    MembershipChanged: on_membership_changed,
}
