"""An internal event becomes one delivery per subscribed endpoint of its organization, in the
transaction that records the event as consumed: a redelivered event adds nothing, and only
committed events exist to be consumed (nothing goes out for a rolled-back write)."""

from __future__ import annotations

import uuid
from datetime import datetime

from coursemesh.integrations.app.endpoints import webhook_id
from coursemesh.integrations.app.ports import EndpointTransaction, NewDelivery
from coursemesh.integrations.domain.catalogue import PublicEvent, body_of


async def fan_out(
    tx: EndpointTransaction, event: PublicEvent, event_id: uuid.UUID, at: datetime, now: datetime
) -> int:
    """Deliveries of ``event`` (internal event ``event_id``, which happened ``at``) to every
    subscriber; how many."""
    endpoints = await tx.subscribers(event.organization_id, event.type)
    if not endpoints:
        return 0
    body = body_of(event.type, event.data, at)
    deliveries = []
    for endpoint in endpoints:
        delivery_id = uuid.uuid4()
        deliveries.append(
            NewDelivery(
                id=delivery_id,
                endpoint_id=endpoint.id,
                organization_id=event.organization_id,
                webhook_id=webhook_id(delivery_id),
                event_id=event_id,
                event_type=event.type,
                body=body,
                created_at=now,
            )
        )
    await tx.add_deliveries(deliveries)
    return len(deliveries)
