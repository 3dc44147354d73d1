"""An internal event becomes one delivery per subscribed endpoint of its organization, in the
transaction that records the event as consumed: a redelivered event adds nothing, and only
committed events exist to be consumed (nothing goes out for a rolled-back write).

Events come as a run (the consumer hands over consecutive events together), and a run costs a
constant number of statements: every event is public, yet almost none has a subscriber, so the
common case must be a single lookup."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from coursemesh.integrations.app.endpoints import webhook_id
from coursemesh.integrations.app.ports import Audience, IntakeTransaction, NewDelivery
from coursemesh.integrations.domain.catalogue import PublicEvent, body_of

#: A consumed event's public counterpart, the internal event's id and when it happened.
Arrival = tuple[PublicEvent, uuid.UUID, datetime]


async def fan_out(tx: IntakeTransaction, run: Sequence[Arrival], now: datetime) -> int:
    """Deliveries of every event of ``run`` to each of its subscribers, in the run's order;
    how many. One subscriber lookup for the whole run, one insert when any is due."""
    if not run:
        return 0
    audiences = list(dict.fromkeys(_audience(event) for event, _, _ in run))
    subscribers = await tx.subscribers(audiences)
    if not subscribers:
        return 0
    deliveries = [
        delivery
        for event, event_id, at in run
        for delivery in _deliveries(event, event_id, at, subscribers.get(_audience(event)), now)
    ]
    if deliveries:
        await tx.add_deliveries(deliveries)
    return len(deliveries)


def _audience(event: PublicEvent) -> Audience:
    return event.organization_id, event.type


def _deliveries(
    event: PublicEvent,
    event_id: uuid.UUID,
    at: datetime,
    endpoint_ids: Sequence[uuid.UUID] | None,
    now: datetime,
) -> list[NewDelivery]:
    """One delivery per endpoint, all with the same body (built only when someone listens)."""
    if not endpoint_ids:
        return []
    body = body_of(event.type, event.data, at)
    deliveries = []
    for endpoint_id in endpoint_ids:
        delivery_id = uuid.uuid4()
        deliveries.append(
            NewDelivery(
                id=delivery_id,
                endpoint_id=endpoint_id,
                organization_id=event.organization_id,
                webhook_id=webhook_id(delivery_id),
                event_id=event_id,
                event_type=event.type,
                body=body,
                created_at=now,
            )
        )
    return deliveries
