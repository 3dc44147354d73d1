"""What the integrations service consumes: catalog's memberships (who is staff), custom-gen's
course owners, and every event that has a public webhook counterpart, turned into deliveries
in the inbox transaction (``app.intake``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coursemesh.chassis.consumer import Subscription
from coursemesh.chassis.db import UnitOfWork
from coursemesh.chassis.memberships import membership_projector
from coursemesh.chassis.rebuild import Projection
from coursemesh.contracts import Envelope, commerce, customgen, learning
from coursemesh.contracts.catalog import MembershipChanged
from coursemesh.integrations.adapters.store_sql import SqlEndpointTransaction
from coursemesh.integrations.adapters.tables import memberships
from coursemesh.integrations.app.intake import fan_out
from coursemesh.integrations.domain.catalogue import public_event

on_membership_changed = membership_projector(memberships)


async def on_custom_course_requested(uow: UnitOfWork, env: Envelope[Any]) -> None:
    payload: customgen.CustomCourseRequested = env.payload
    tx = SqlEndpointTransaction(uow.session)
    await tx.remember_custom_course(payload.custom_course_id, payload.organization_id)


async def on_public_event(uow: UnitOfWork, env: Envelope[Any]) -> None:
    tx = SqlEndpointTransaction(uow.session)
    course_id = getattr(env.payload, "custom_course_id", None)
    owner = None
    if isinstance(env.payload, customgen.CustomCourseReady | customgen.CustomCourseUpdated):
        owner = await tx.custom_course_organization(course_id) if course_id else None
    event = public_event(env.payload, owner)
    if event is not None:
        await fan_out(tx, event, env.id, env.occurred_at, datetime.now(UTC))


PUBLISHED = (
    commerce.EntitlementChangedV2,
    commerce.PaymentCompleted,
    commerce.PaymentFailed,
    commerce.PaymentRefunded,
    commerce.LeadCreated,
    learning.CourseStarted,
    learning.CourseCompleted,
    learning.WorkoutCompleted,
    customgen.CustomCourseReady,
    customgen.CustomCourseUpdated,
    customgen.RegenRequestDecided,
)


def subscriptions() -> list[Subscription]:
    handlers: dict[Any, Any] = dict.fromkeys(PUBLISHED, on_public_event)
    handlers[MembershipChanged] = on_membership_changed
    handlers[customgen.CustomCourseRequested] = on_custom_course_requested
    return Subscription.of(handlers)


#: Rebuildable with ``coursemesh projection rebuild integrations <name>``.
PROJECTIONS = (
    Projection(
        "memberships",
        tables=(memberships,),
        handlers={MembershipChanged: on_membership_changed},
        description="catalog's memberships: who is staff of an organization",
    ),
)
