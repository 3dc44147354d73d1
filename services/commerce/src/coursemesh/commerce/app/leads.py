"""Leads: buyers without a membership of the seller (the seed's branch B)."""

from __future__ import annotations

import uuid
from datetime import datetime

from coursemesh.chassis.auth import Principal
from coursemesh.commerce.app.ports import Publisher
from coursemesh.contracts.commerce import LeadCreated
from coursemesh.contracts.types import LeadSource


def publish_lead_created(
    uow: Publisher,
    lead_id: uuid.UUID,
    organization_id: uuid.UUID,
    buyer: Principal,
    source: LeadSource,
    now: datetime,
) -> None:
    """``lead.created``: a buyer's lead was newly linked to a seller (branch B)."""
    uow.publish(
        LeadCreated(
            lead_id=lead_id,
            organization_id=organization_id,
            user_id=buyer.sub,
            email=buyer.email,
            source=source,
            created_at=now,
        ),
        aggregate_id=lead_id,
        aggregate_version=1,
    )
