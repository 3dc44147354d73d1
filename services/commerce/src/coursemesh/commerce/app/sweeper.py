"""Abandoned checkouts: pending entitlements older than the TTL are revoked with cause
``checkout_expired``; the buyer can check out again (the same row is reopened)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from coursemesh.commerce.app.ports import SweeperStore
from coursemesh.commerce.domain.entitlements import transition

ACTOR = "system:checkout-sweeper"
BATCH = 200


async def expire_abandoned_checkouts(
    store: SweeperStore, *, ttl: timedelta, now: datetime | None = None, batch: int = BATCH
) -> int:
    """Revoke one batch of expired pending checkouts; returns how many. Rows are claimed with
    SKIP LOCKED so replicas share the work and a checkout in flight is never blocked."""
    now = now or datetime.now(UTC)
    async with store.transaction() as tx:
        pending = await tx.claim_pending(now - ttl, batch)
        for claimed in pending:
            t = transition(
                claimed.entitlement,
                "checkout_expired",
                actor=ACTOR,
                now=now,
                reason="checkout_expired",
                transaction_id=claimed.open_payment_id,
            )
            await tx.entitlements.save(t)
        return len(pending)


async def run_sweeper(
    store: SweeperStore, ttl: timedelta, interval: float, stop: asyncio.Event
) -> None:
    """Sweep until stopped: a full batch sweeps again at once, otherwise wait ``interval``."""
    while not stop.is_set():
        if await expire_abandoned_checkouts(store, ttl=ttl) >= BATCH:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
