"""Abandoned checkouts (a gap of the seed): pending entitlements older than the TTL are
revoked with cause ``checkout_expired``; the buyer can check out again (reactivation)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from coursemesh.chassis.db import Database
from coursemesh.commerce.adapters.tables import entitlements
from coursemesh.commerce.app import entitlement_store as store
from coursemesh.commerce.domain.entitlements import transition

ACTOR = "system:checkout-sweeper"


async def expire_abandoned_checkouts(
    db: Database, *, ttl: timedelta, now: datetime | None = None, batch: int = 200
) -> int:
    """Revoke one batch of expired pending checkouts; returns how many. Rows are claimed with
    SKIP LOCKED so replicas share the work and a checkout in flight is never blocked."""
    now = now or datetime.now(UTC)
    async with db.unit_of_work() as uow:
        rows = (
            (
                await uow.session.execute(
                    sa.select(entitlements)
                    .where(
                        entitlements.c.status == "pending",
                        entitlements.c.status_changed_at < now - ttl,
                    )
                    .order_by(entitlements.c.status_changed_at)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            )
            .mappings()
            .all()
        )
        for row in rows:
            t = transition(
                store.from_row(row),
                "checkout_expired",
                actor=ACTOR,
                now=now,
                reason="checkout_expired",
            )
            await store.update(uow, t.entitlement)
            await store.record(uow, t)
        return len(rows)


async def run_sweeper(db: Database, ttl: timedelta, interval: float, stop: asyncio.Event) -> None:
    """Sweep until stopped: a full batch sweeps again at once, otherwise wait ``interval``."""
    while not stop.is_set():
        if await expire_abandoned_checkouts(db, ttl=ttl) >= 200:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
