"""What the integrations use cases need from the outside world, as Protocols: the store of
endpoints and deliveries (in a transaction), the sender's queue, DNS and HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from coursemesh.chassis.staff import StaffDirectory
from coursemesh.integrations.domain.ssrf import IPAddress, Target


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: uuid.UUID
    organization_id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NewDelivery:
    id: uuid.UUID
    endpoint_id: uuid.UUID
    organization_id: uuid.UUID
    webhook_id: str
    event_id: uuid.UUID | None
    event_type: str
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
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


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt: int
    at: datetime
    response_status: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str | None


@dataclass(frozen=True, slots=True)
class EndpointChanges:
    """A PATCH: None leaves a field as it is."""

    url: str | None = None
    event_types: list[str] | None = None
    description: str | None = None
    enabled: bool | None = None


class EndpointTransaction(StaffDirectory, Protocol):
    async def add_endpoint(self, endpoint: Endpoint) -> None: ...

    async def endpoints(
        self, organization_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[list[Endpoint], int]: ...

    async def endpoint(
        self, organization_id: uuid.UUID, endpoint_id: uuid.UUID, *, lock: bool = False
    ) -> Endpoint | None: ...

    async def save_endpoint(self, endpoint: Endpoint) -> None: ...

    async def delete_endpoint(self, endpoint_id: uuid.UUID) -> None: ...

    async def add_deliveries(self, deliveries: Sequence[NewDelivery]) -> None:
        """Insert; a delivery of an event an endpoint already has is skipped (at most one
        per endpoint and event). Announces them to the senders once committed."""
        ...

    async def deliveries(
        self, endpoint_id: uuid.UUID, status: str | None, offset: int, limit: int
    ) -> tuple[list[Delivery], int]: ...

    async def delivery(self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> Delivery | None: ...

    async def attempts(self, delivery_id: uuid.UUID) -> list[Attempt]: ...

    async def schedule_again(
        self,
        endpoint_id: uuid.UUID,
        now: datetime,
        *,
        delivery_id: uuid.UUID | None = None,
        failed_between: tuple[datetime, datetime] | None = None,
    ) -> int:
        """Make deliveries pending and due now, their attempts count reset (the history
        kept): one delivery, or the endpoint's failed ones created in a time range."""
        ...


class EndpointStorage(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[EndpointTransaction]: ...


#: An (organization, public event type) pair: what decides who subscribes to an event.
Audience = tuple[uuid.UUID, str]


class IntakeTransaction(Protocol):
    """What turning consumed events into deliveries needs, in the inbox transaction: set-based,
    so that a run of events costs the same few statements as one event."""

    async def subscribers(
        self, audiences: Sequence[Audience]
    ) -> Mapping[Audience, Sequence[uuid.UUID]]:
        """The ids of each organization's enabled endpoints subscribed to the event type, for
        every pair at once; a pair without any is left out."""
        ...

    async def add_deliveries(self, deliveries: Sequence[NewDelivery]) -> None:
        """As :meth:`EndpointTransaction.add_deliveries`."""
        ...


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A due delivery a sender holds until ``claimed_until``, with its endpoint."""

    id: uuid.UUID
    webhook_id: str
    body: str
    attempts: int
    endpoint: Endpoint
    #: the claim's end, which also identifies it: a replay meanwhile clears it
    claimed_until: datetime


@dataclass(frozen=True, slots=True)
class SendResult:
    status: int | None
    latency_ms: int
    error: str | None = None
    excerpt: str | None = None
    retry_after: float | None = None


class DeliveryQueue(Protocol):
    async def claim_due(
        self, now: datetime, limit: int, lease_seconds: float, busy: Sequence[uuid.UUID]
    ) -> list[ClaimedDelivery]:
        """Up to ``limit`` due pending deliveries of enabled endpoints, at most one per
        endpoint and none of the ``busy`` endpoints, oldest due first; each leased until
        ``now + lease_seconds`` (a dead sender's claims come back after that)."""
        ...

    async def record(
        self,
        delivery: ClaimedDelivery,
        result: SendResult,
        at: datetime,
        *,
        status: str,
        next_attempt_at: datetime | None,
        disable_reason: str | None = None,
    ) -> None:
        """The attempt, and, while the claim still stands (no replay started the delivery
        over meanwhile), the delivery's new state and (``disable_reason``) its endpoint
        disabled, in one transaction."""
        ...

    async def purge(self, before: datetime) -> int: ...


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[IPAddress]: ...


class Sender(Protocol):
    async def send(
        self,
        target: Target,
        address: IPAddress,
        headers: dict[str, str],
        body: str,
        timeout: float,
    ) -> SendResult: ...
