"""Staff manage their organization's webhook endpoints and read and replay their deliveries.
Every use case runs in one transaction and first checks the caller is staff of the
organization (anyone else: 404, as for an endpoint that does not exist)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from coursemesh.chassis.staff import require_staff
from coursemesh.contracts.webhooks import TEST_EVENT_TYPE, TestData
from coursemesh.integrations.app.ports import (
    Attempt,
    Delivery,
    Endpoint,
    EndpointChanges,
    EndpointStorage,
    EndpointTransaction,
    NewDelivery,
    Resolver,
)
from coursemesh.integrations.domain.catalogue import body_of, unknown_event_types
from coursemesh.integrations.domain.errors import (
    DeliveryNotFound,
    EndpointNotFound,
    EndpointUrlInvalid,
    UnknownEventType,
)
from coursemesh.integrations.domain.secrets import new_secret
from coursemesh.integrations.domain.ssrf import (
    check_addresses,
    literal_address,
    parse_endpoint_url,
)


@dataclass(frozen=True, slots=True)
class Policy:
    #: development: http:// and loopback destinations accepted
    allow_loopback: bool
    secret_grace: timedelta


def webhook_id(delivery_id: uuid.UUID) -> str:
    return f"msg_{delivery_id.hex}"


async def check_destination(url: str, resolver: Resolver, policy: Policy) -> None:
    """Refuse a URL that is malformed or whose host resolves to an address we never send to."""
    target = parse_endpoint_url(url, allow_insecure=policy.allow_loopback)
    literal = literal_address(target.host)
    try:
        addresses = [literal] if literal else await resolver.resolve(target.host, target.port)
    except (OSError, UnicodeError) as exc:  # no such name, or not a valid one
        raise EndpointUrlInvalid(f"{target.host} does not resolve") from exc
    check_addresses(target.host, addresses, allow_loopback=policy.allow_loopback)


def _check_event_types(names: list[str]) -> list[str]:
    unknown = unknown_event_types(names)
    if unknown or not names:
        raise UnknownEventType(
            f"Not an event type: {', '.join(unknown)}" if unknown else "No event type given"
        )
    return sorted(set(names))


async def _staff_endpoint(
    tx: EndpointTransaction,
    organization_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    user_id: str,
    *,
    lock: bool = False,
) -> Endpoint:
    await require_staff(tx, organization_id, user_id)
    endpoint = await tx.endpoint(organization_id, endpoint_id, lock=lock)
    if endpoint is None:
        raise EndpointNotFound()
    return endpoint


class Endpoints:
    def __init__(self, storage: EndpointStorage, resolver: Resolver, policy: Policy) -> None:
        self._storage = storage
        self._resolver = resolver
        self._policy = policy

    async def register(
        self,
        organization_id: uuid.UUID,
        user_id: str,
        url: str,
        event_types: list[str],
        description: str | None,
        now: datetime,
    ) -> Endpoint:
        types = _check_event_types(event_types)
        # Staff first: a DNS lookup is never made on behalf of someone who may not register.
        async with self._storage.transaction() as tx:
            await require_staff(tx, organization_id, user_id)
        await check_destination(url, self._resolver, self._policy)
        endpoint = Endpoint(
            id=uuid.uuid4(),
            organization_id=organization_id,
            url=url,
            description=description,
            event_types=types,
            enabled=True,
            disabled_reason=None,
            secret=new_secret(),
            previous_secret=None,
            previous_secret_expires_at=None,
            created_at=now,
            updated_at=now,
        )
        async with self._storage.transaction() as tx:
            await require_staff(tx, organization_id, user_id)
            await tx.add_endpoint(endpoint)
        return endpoint

    async def listed(
        self, organization_id: uuid.UUID, user_id: str, offset: int, limit: int
    ) -> tuple[list[Endpoint], int]:
        async with self._storage.transaction() as tx:
            await require_staff(tx, organization_id, user_id)
            return await tx.endpoints(organization_id, offset, limit)

    async def get(
        self, organization_id: uuid.UUID, endpoint_id: uuid.UUID, user_id: str
    ) -> Endpoint:
        async with self._storage.transaction() as tx:
            return await _staff_endpoint(tx, organization_id, endpoint_id, user_id)

    async def update(
        self,
        organization_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        user_id: str,
        changes: EndpointChanges,
        now: datetime,
    ) -> Endpoint:
        types = None if changes.event_types is None else _check_event_types(changes.event_types)
        if changes.url is not None:
            async with self._storage.transaction() as tx:
                await _staff_endpoint(tx, organization_id, endpoint_id, user_id)
            await check_destination(changes.url, self._resolver, self._policy)
        async with self._storage.transaction() as tx:
            endpoint = await _staff_endpoint(tx, organization_id, endpoint_id, user_id, lock=True)
            enabled = endpoint.enabled if changes.enabled is None else changes.enabled
            changed = replace(
                endpoint,
                url=changes.url or endpoint.url,
                event_types=types or endpoint.event_types,
                description=(
                    endpoint.description if changes.description is None else changes.description
                ),
                enabled=enabled,
                disabled_reason=None if enabled else (endpoint.disabled_reason or "by staff"),
                updated_at=now,
            )
            await tx.save_endpoint(changed)
            return changed

    async def delete(
        self, organization_id: uuid.UUID, endpoint_id: uuid.UUID, user_id: str
    ) -> None:
        async with self._storage.transaction() as tx:
            await _staff_endpoint(tx, organization_id, endpoint_id, user_id, lock=True)
            await tx.delete_endpoint(endpoint_id)

    async def rotate_secret(
        self, organization_id: uuid.UUID, endpoint_id: uuid.UUID, user_id: str, now: datetime
    ) -> Endpoint:
        """A new secret; the one it replaces still signs, beside it, for the grace period."""
        async with self._storage.transaction() as tx:
            endpoint = await _staff_endpoint(tx, organization_id, endpoint_id, user_id, lock=True)
            rotated = replace(
                endpoint,
                secret=new_secret(),
                previous_secret=endpoint.secret,
                previous_secret_expires_at=now + self._policy.secret_grace,
                updated_at=now,
            )
            await tx.save_endpoint(rotated)
            return rotated

    async def send_test(
        self, organization_id: uuid.UUID, endpoint_id: uuid.UUID, user_id: str, now: datetime
    ) -> NewDelivery:
        """A ``webhook.test`` delivery to this endpoint alone, whatever it subscribes to."""
        async with self._storage.transaction() as tx:
            endpoint = await _staff_endpoint(tx, organization_id, endpoint_id, user_id)
            delivery_id = uuid.uuid4()
            data = TestData(
                endpoint_id=endpoint.id,
                organization_id=organization_id,
                message="A test event, sent on request.",
            )
            delivery = NewDelivery(
                id=delivery_id,
                endpoint_id=endpoint.id,
                organization_id=organization_id,
                webhook_id=webhook_id(delivery_id),
                event_id=None,
                event_type=TEST_EVENT_TYPE,
                body=body_of(TEST_EVENT_TYPE, data, now),
                created_at=now,
            )
            await tx.add_deliveries([delivery])
            return delivery

    async def deliveries(
        self,
        organization_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        user_id: str,
        status: str | None,
        offset: int,
        limit: int,
    ) -> tuple[list[Delivery], int]:
        async with self._storage.transaction() as tx:
            await _staff_endpoint(tx, organization_id, endpoint_id, user_id)
            return await tx.deliveries(endpoint_id, status, offset, limit)

    async def delivery(
        self,
        organization_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        delivery_id: uuid.UUID,
        user_id: str,
    ) -> tuple[Delivery, list[Attempt]]:
        async with self._storage.transaction() as tx:
            await _staff_endpoint(tx, organization_id, endpoint_id, user_id)
            delivery = await tx.delivery(endpoint_id, delivery_id)
            if delivery is None:
                raise DeliveryNotFound()
            return delivery, await tx.attempts(delivery_id)

    async def replay(
        self,
        organization_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        delivery_id: uuid.UUID,
        user_id: str,
        now: datetime,
    ) -> Delivery:
        """Send the delivery again, same ``webhook-id`` and body, its schedule started over."""
        async with self._storage.transaction() as tx:
            await _staff_endpoint(tx, organization_id, endpoint_id, user_id)
            if not await tx.schedule_again(endpoint_id, now, delivery_id=delivery_id):
                raise DeliveryNotFound()
            replayed = await tx.delivery(endpoint_id, delivery_id)
            assert replayed is not None  # scheduled again just now, in this transaction
            return replayed

    async def replay_failed(
        self,
        organization_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        user_id: str,
        since: datetime,
        until: datetime,
        now: datetime,
    ) -> int:
        async with self._storage.transaction() as tx:
            await _staff_endpoint(tx, organization_id, endpoint_id, user_id)
            return await tx.schedule_again(endpoint_id, now, failed_between=(since, until))
