"""What the integrations service consumes: catalog's memberships (who is staff), custom-gen's
course owners, and every event that has a public webhook counterpart, turned into deliveries
in the inbox transaction (``app.intake``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from coursemesh.chassis.consumer import Batched, Subscription
from coursemesh.chassis.db import UnitOfWork
from coursemesh.chassis.memberships import membership_projector
from coursemesh.chassis.rebuild import Projection
from coursemesh.chassis.transaction import Transaction
from coursemesh.contracts import Envelope, commerce, customgen, learning
from coursemesh.contracts.catalog import MembershipChanged
from coursemesh.integrations.adapters.intake_driver import DriverIntake
from coursemesh.integrations.adapters.store_sql import SqlEndpointTransaction
from coursemesh.integrations.adapters.tables import memberships
from coursemesh.integrations.app.intake import Arrival, fan_out
from coursemesh.integrations.domain.catalogue import public_event

on_membership_changed = membership_projector(memberships)


async def on_custom_course_requested(uow: UnitOfWork, env: Envelope[Any]) -> None:
    payload: customgen.CustomCourseRequested = env.payload
    tx = SqlEndpointTransaction(uow.session)
    await tx.remember_custom_course(payload.custom_course_id, payload.organization_id)


_CUSTOM_COURSE_EVENTS = (customgen.CustomCourseReady, customgen.CustomCourseUpdated)


async def on_public_events(tx: Transaction, envs: Sequence[Envelope[Any]]) -> None:
    """A run of consumed events, whatever their types, fanned out in one go on the driver:
    almost no event has a subscriber, so a run usually costs one lookup and nothing more."""
    intake = DriverIntake(await tx.driver())
    owners = await intake.custom_course_organizations(
        [env.payload.custom_course_id for env in envs if _is_custom_course(env)]
    )
    run: list[Arrival] = []
    for env in envs:
        owner = owners.get(env.payload.custom_course_id) if _is_custom_course(env) else None
        event = public_event(env.payload, owner)
        if event is not None:
            run.append((event, env.id, env.occurred_at))
    await fan_out(intake, run, datetime.now(UTC))


def _is_custom_course(env: Envelope[Any]) -> bool:
    """Custom-gen's ready and updated events name no organization: we look it up."""
    return isinstance(env.payload, _CUSTOM_COURSE_EVENTS)


#: One handler object for every published type, so that a run mixing them is one call.
on_public_event = Batched(on_public_events)


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
