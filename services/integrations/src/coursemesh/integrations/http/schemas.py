"""Request and response bodies (camelCase on the wire, unknown fields rejected)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from coursemesh.integrations.app.ports import Attempt, Delivery, Endpoint

Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
EventTypes = Annotated[
    list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]],
    msgspec.Meta(min_length=1, max_length=32),
]
Description = Annotated[str, msgspec.Meta(max_length=500)]


class EndpointBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    url: Url
    event_types: EventTypes
    description: Description | None = None


class EndpointPatch(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: bool | None = None


class ReplayFailedBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    since: datetime
    until: datetime


class EndpointView(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    organization_id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime
    #: the previous secret's end of grace after a rotation, else null
    previous_secret_expires_at: datetime | None

    @classmethod
    def of(cls, e: Endpoint) -> EndpointView:
        return cls(
            e.id,
            e.organization_id,
            e.url,
            e.description,
            e.event_types,
            e.enabled,
            e.disabled_reason,
            e.created_at,
            e.updated_at,
            e.previous_secret_expires_at,
        )


class EndpointWithSecret(EndpointView, rename="camel"):
    """An endpoint as registered or rotated: the only answers that show its secret."""

    secret: str

    @classmethod
    def of(cls, e: Endpoint) -> EndpointWithSecret:
        return cls(**msgspec.structs.asdict(EndpointView.of(e)), secret=e.secret)


class EndpointPage(msgspec.Struct, rename="camel"):
    items: list[EndpointView]
    total: int
    limit: int
    offset: int


class DeliveryView(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    webhook_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_response_status: int | None
    last_latency_ms: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, d: Delivery) -> DeliveryView:
        return cls(
            d.id,
            d.endpoint_id,
            d.webhook_id,
            d.event_type,
            d.status,
            d.attempts,
            d.next_attempt_at,
            d.last_response_status,
            d.last_latency_ms,
            d.last_error,
            d.created_at,
            d.updated_at,
        )


class DeliveryPage(msgspec.Struct, rename="camel"):
    items: list[DeliveryView]
    total: int
    limit: int
    offset: int


class AttemptView(msgspec.Struct, rename="camel"):
    attempt: int
    at: datetime
    response_status: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str | None

    @classmethod
    def of(cls, a: Attempt) -> AttemptView:
        return cls(a.attempt, a.at, a.response_status, a.latency_ms, a.error, a.response_excerpt)


class DeliveryDetail(msgspec.Struct, rename="camel"):
    delivery: DeliveryView
    attempts: list[AttemptView]


class TestSent(msgspec.Struct, rename="camel"):
    __test__ = False  # not a pytest test class

    delivery_id: uuid.UUID
    webhook_id: str


class ReplayedCount(msgspec.Struct, rename="camel"):
    replayed: int
