"""The endpoint store and the delivery queue on the service's PostgreSQL schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from coursemesh.chassis.db import Database
from coursemesh.integrations.adapters.tables import (
    custom_course_owners,
    deliveries,
    delivery_attempts,
    endpoints,
    memberships,
)
from coursemesh.integrations.app.ports import (
    Attempt,
    ClaimedDelivery,
    Delivery,
    Endpoint,
    EndpointTransaction,
    NewDelivery,
    SendResult,
)

#: The channel new deliveries are announced on (every sender process LISTENs to it).
CHANNEL = "integrations_deliveries"
_EXCERPT_CHARS = 1024


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        id=row.id,
        organization_id=row.organization_id,
        url=row.url,
        description=row.description,
        event_types=list(row.event_types),
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        secret=row.secret,
        previous_secret=row.previous_secret,
        previous_secret_expires_at=row.previous_secret_expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        endpoint_id=row.endpoint_id,
        webhook_id=row.webhook_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_response_status=row.last_response_status,
        last_latency_ms=row.last_latency_ms,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _endpoint_values(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "organization_id": endpoint.organization_id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "secret": endpoint.secret,
        "previous_secret": endpoint.previous_secret,
        "previous_secret_expires_at": endpoint.previous_secret_expires_at,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


def delivery_values(delivery: NewDelivery) -> dict[str, Any]:
    """The row of a new delivery: pending, never tried, due as soon as it exists."""
    return {
        "id": delivery.id,
        "endpoint_id": delivery.endpoint_id,
        "organization_id": delivery.organization_id,
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "body": delivery.body,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": delivery.created_at,
        "created_at": delivery.created_at,
        "updated_at": delivery.created_at,
    }


class SqlEndpointTransaction:
    """:class:`~coursemesh.integrations.app.ports.EndpointTransaction` on a session."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool:
        found = await self._s.scalar(
            sa.select(memberships.c.is_staff).where(
                memberships.c.organization_id == organization_id,
                memberships.c.user_id == user_id,
            )
        )
        return bool(found)

    async def add_endpoint(self, endpoint: Endpoint) -> None:
        await self._s.execute(endpoints.insert().values(_endpoint_values(endpoint)))

    async def endpoints(
        self, organization_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[list[Endpoint], int]:
        where = endpoints.c.organization_id == organization_id
        total = await self._s.scalar(sa.select(sa.func.count()).where(where)) or 0
        rows = await self._s.execute(
            sa.select(endpoints)
            .where(where)
            .order_by(endpoints.c.created_at, endpoints.c.id)
            .offset(offset)
            .limit(limit)
        )
        return [_endpoint(r) for r in rows], total

    async def endpoint(
        self, organization_id: uuid.UUID, endpoint_id: uuid.UUID, *, lock: bool = False
    ) -> Endpoint | None:
        query = sa.select(endpoints).where(
            endpoints.c.id == endpoint_id, endpoints.c.organization_id == organization_id
        )
        row = (await self._s.execute(query.with_for_update() if lock else query)).first()
        return None if row is None else _endpoint(row)

    async def save_endpoint(self, endpoint: Endpoint) -> None:
        await self._s.execute(
            endpoints.update()
            .where(endpoints.c.id == endpoint.id)
            .values(_endpoint_values(endpoint))
        )
        if endpoint.enabled:
            await self._s.execute(sa.text(f"NOTIFY {CHANNEL}"))

    async def delete_endpoint(self, endpoint_id: uuid.UUID) -> None:
        await self._s.execute(endpoints.delete().where(endpoints.c.id == endpoint_id))

    async def add_deliveries(self, new: Sequence[NewDelivery]) -> None:
        await self._s.execute(
            pg_insert(deliveries)
            .values([delivery_values(d) for d in new])
            .on_conflict_do_nothing(constraint="uq_deliveries_endpoint_event")
        )
        await self._s.execute(sa.text(f"NOTIFY {CHANNEL}"))

    async def deliveries(
        self, endpoint_id: uuid.UUID, status: str | None, offset: int, limit: int
    ) -> tuple[list[Delivery], int]:
        where = [deliveries.c.endpoint_id == endpoint_id]
        if status is not None:
            where.append(deliveries.c.status == status)
        total = await self._s.scalar(sa.select(sa.func.count()).where(*where)) or 0
        rows = await self._s.execute(
            sa.select(deliveries)
            .where(*where)
            .order_by(deliveries.c.created_at.desc(), deliveries.c.id)
            .offset(offset)
            .limit(limit)
        )
        return [_delivery(r) for r in rows], total

    async def delivery(self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> Delivery | None:
        row = (
            await self._s.execute(
                sa.select(deliveries).where(
                    deliveries.c.id == delivery_id, deliveries.c.endpoint_id == endpoint_id
                )
            )
        ).first()
        return None if row is None else _delivery(row)

    async def attempts(self, delivery_id: uuid.UUID) -> list[Attempt]:
        rows = await self._s.execute(
            sa.select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id == delivery_id)
            .order_by(delivery_attempts.c.id)
        )
        return [
            Attempt(
                attempt=r.attempt,
                at=r.at,
                response_status=r.response_status,
                latency_ms=r.latency_ms,
                error=r.error,
                response_excerpt=r.response_excerpt,
            )
            for r in rows
        ]

    async def schedule_again(
        self,
        endpoint_id: uuid.UUID,
        now: datetime,
        *,
        delivery_id: uuid.UUID | None = None,
        failed_between: tuple[datetime, datetime] | None = None,
    ) -> int:
        where = [deliveries.c.endpoint_id == endpoint_id]
        if delivery_id is not None:
            where.append(deliveries.c.id == delivery_id)
        if failed_between is not None:
            since, until = failed_between
            where += [
                deliveries.c.status == "failed",
                deliveries.c.created_at >= since,
                deliveries.c.created_at < until,
            ]
        result = await self._s.execute(
            deliveries.update()
            .where(*where)
            .values(
                status="pending",
                attempts=0,
                next_attempt_at=now,
                claimed_until=None,
                updated_at=now,
            )
            .returning(deliveries.c.id)
        )
        count = len(result.all())
        if count:
            await self._s.execute(sa.text(f"NOTIFY {CHANNEL}"))
        return count

    async def remember_custom_course(
        self, custom_course_id: uuid.UUID, organization_id: uuid.UUID
    ) -> None:
        await self._s.execute(
            pg_insert(custom_course_owners)
            .values(custom_course_id=custom_course_id, organization_id=organization_id)
            .on_conflict_do_nothing()
        )


class SqlEndpointStorage:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[EndpointTransaction]:
        async with self._db.unit_of_work() as uow:
            yield SqlEndpointTransaction(uow.session)


# The sender's claim, built once (it runs at every wake-up): each enabled endpoint with none
# in flight and not ``busy`` here, with its earliest due delivery (one index probe each).
_first_due = (
    sa.select(deliveries.c.id, deliveries.c.next_attempt_at)
    .where(
        deliveries.c.endpoint_id == endpoints.c.id,
        deliveries.c.status == "pending",
        deliveries.c.next_attempt_at <= sa.bindparam("now"),
    )
    .order_by(deliveries.c.next_attempt_at)
    .limit(1)
    .lateral("first_due")
)
_in_flight = (
    sa.select(deliveries.c.id)
    .where(
        deliveries.c.endpoint_id == endpoints.c.id,
        deliveries.c.claimed_until >= sa.bindparam("now"),
        deliveries.c.status == "pending",
    )
    .exists()
)
_CLAIMABLE = (
    sa.select(_first_due.c.id, endpoints.c.id.label("endpoint_id"))
    .select_from(endpoints.join(_first_due, sa.true()))
    .where(
        endpoints.c.enabled,
        ~_in_flight,
        endpoints.c.id.not_in(sa.bindparam("busy", expanding=True)),
    )
    .order_by(_first_due.c.next_attempt_at)
    .limit(sa.bindparam("limit", type_=sa.Integer))
    # NO KEY UPDATE: new deliveries' foreign-key checks (KEY SHARE) are not blocked.
    .with_for_update(of=endpoints, skip_locked=True, key_share=True)
)


class SqlDeliveryQueue:
    """:class:`~coursemesh.integrations.app.ports.DeliveryQueue` on the database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim_due(
        self, now: datetime, limit: int, lease_seconds: float, busy: Sequence[uuid.UUID]
    ) -> list[ClaimedDelivery]:
        """The earliest due delivery of each endpoint with none in flight, oldest first.

        Walking the endpoints (each one's first due row by index) rather than the due rows
        means one endpoint's backlog, however long, never hides another endpoint's delivery.
        The endpoint row is locked while claiming so that two senders never both start one:
        an endpoint has at most one delivery in flight across every process."""
        async with self._db.unit_of_work() as uow:
            params = {"now": now, "limit": limit, "busy": list(busy)}
            chosen = {
                row.endpoint_id: row.id for row in await uow.session.execute(_CLAIMABLE, params)
            }
            if not chosen:
                return []
            claimed = await uow.session.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(list(chosen.values())))
                .values(claimed_until=now + timedelta(seconds=lease_seconds))
                .returning(
                    deliveries.c.id,
                    deliveries.c.webhook_id,
                    deliveries.c.body,
                    deliveries.c.attempts,
                    deliveries.c.endpoint_id,
                    deliveries.c.claimed_until,
                )
            )
            rows = claimed.all()
            owners = {
                r.id: _endpoint(r)
                for r in await uow.session.execute(
                    sa.select(endpoints).where(endpoints.c.id.in_(list(chosen)))
                )
            }
        return [
            ClaimedDelivery(
                id=r.id,
                webhook_id=r.webhook_id,
                body=r.body,
                attempts=r.attempts,
                endpoint=owners[r.endpoint_id],
                claimed_until=r.claimed_until,
            )
            for r in rows
        ]

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
        excerpt = None if result.excerpt is None else result.excerpt[:_EXCERPT_CHARS]
        async with self._db.unit_of_work() as uow:
            s = uow.session
            await s.execute(
                delivery_attempts.insert().values(
                    delivery_id=delivery.id,
                    attempt=delivery.attempts + 1,
                    at=at,
                    response_status=result.status,
                    latency_ms=result.latency_ms,
                    error=result.error,
                    response_excerpt=excerpt,
                )
            )
            # Only while our claim stands: a replay in the meantime cleared it and started the
            # delivery over, which this attempt's outcome must not overwrite.
            updated = await s.execute(
                deliveries.update()
                .where(
                    deliveries.c.id == delivery.id,
                    deliveries.c.claimed_until == delivery.claimed_until,
                )
                .values(
                    status=status,
                    attempts=delivery.attempts + 1,
                    next_attempt_at=next_attempt_at,
                    claimed_until=None,
                    last_response_status=result.status,
                    last_latency_ms=result.latency_ms,
                    last_error=result.error,
                    updated_at=at,
                )
                .returning(deliveries.c.id)
            )
            if updated.first() is not None and disable_reason is not None:
                await s.execute(
                    endpoints.update()
                    .where(endpoints.c.id == delivery.endpoint.id)
                    .values(enabled=False, disabled_reason=disable_reason, updated_at=at)
                )

    async def purge(self, before: datetime) -> int:
        """Deliveries older than ``before`` that are settled, or still pending for an endpoint
        disabled since before then (they would otherwise wait forever)."""
        long_disabled = sa.select(endpoints.c.id).where(
            ~endpoints.c.enabled, endpoints.c.updated_at < before
        )
        async with self._db.unit_of_work() as uow:
            result = await uow.session.execute(
                deliveries.delete()
                .where(
                    deliveries.c.created_at < before,
                    sa.or_(
                        deliveries.c.status != "pending",
                        deliveries.c.endpoint_id.in_(long_disabled),
                    ),
                )
                .returning(deliveries.c.id)
            )
            return len(result.all())
