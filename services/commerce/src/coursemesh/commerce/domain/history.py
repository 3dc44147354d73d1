"""The access history of an entitlement: every audited step (``entitlement_transitions``) as
its staff and its buyer see it, with who caused it and the payment it is about. Pure: no I/O.

Actors are stored as ``user:<id>`` (the buyer at checkout, a staff member revoking),
``provider-webhook`` (the payment provider's verified webhook) or ``system:<name>`` (a worker:
``system:checkout-sweeper``). Rows written before actors were prefixed carry a buyer's bare user
id; they are read as ``user:<id>``.

Who a person was is told by the step, not by who reads it: a staff revoke is ``staff`` (even
when the staff member revoked their own purchase), any other person is the entitlement's
``buyer``. The buyer's own view never names a staff member: ``actor`` is null there, and
``actorType`` and ``reason`` say what happened.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from coursemesh.commerce.domain.payments import WEBHOOK_ACTOR

ActorType = Literal["buyer", "staff", "provider-webhook", "system"]
Viewer = Literal["staff", "buyer"]

USER_PREFIX = "user:"
SYSTEM_PREFIX = "system:"
#: the cause of the one step a staff member takes on an entitlement
STAFF_CAUSES = frozenset({"staff_revoked", "staff_granted"})


@dataclass(frozen=True, slots=True)
class LinkedPayment:
    """The payment a step names, as it stands now (its status may have moved on since)."""

    id: uuid.UUID
    #: None: the payment row is gone or unknown to this service
    status: str | None
    amount_in_cents: int | None
    currency: str | None


@dataclass(frozen=True, slots=True)
class RecordedStep:
    """One ``entitlement_transitions`` row as stored."""

    at: datetime
    from_status: str | None
    to_status: str
    cause: str
    actor: str
    reason: str | None
    payment: LinkedPayment | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One step as a viewer sees it; ``actor`` is the normalised actor, None when hidden."""

    at: datetime
    from_status: str | None
    to_status: str
    cause: str
    actor: str | None
    actor_type: ActorType
    reason: str | None
    payment: LinkedPayment | None


def classify_actor(actor: str, cause: str, buyer_id: str) -> tuple[str, ActorType]:
    """The normalised actor and its type: ``provider-webhook``, ``system:<name>`` (system),
    else a person ``user:<id>`` (a bare legacy id included), staff for a staff step or a person
    other than the buyer, the buyer otherwise."""
    if actor == WEBHOOK_ACTOR:
        return actor, "provider-webhook"
    if actor.startswith(SYSTEM_PREFIX):
        return actor, "system"
    user_id = actor.removeprefix(USER_PREFIX)
    person: ActorType = "staff" if cause in STAFF_CAUSES or user_id != buyer_id else "buyer"
    return USER_PREFIX + user_id, person


def history_entry(step: RecordedStep, *, buyer_id: str, viewer: Viewer) -> HistoryEntry:
    """The step for ``viewer``: staff see every actor; the buyer sees no staff member's id."""
    actor, actor_type = classify_actor(step.actor, step.cause, buyer_id)
    shown = None if viewer == "buyer" and actor_type == "staff" else actor
    return HistoryEntry(
        at=step.at,
        from_status=step.from_status,
        to_status=step.to_status,
        cause=step.cause,
        actor=shown,
        actor_type=actor_type,
        reason=step.reason,
        payment=step.payment,
    )
