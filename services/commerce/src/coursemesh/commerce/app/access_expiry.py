"""Time-limited access: the notice before an access ends, and its end.

Both run as one worker of every replica. Rows are claimed with SKIP LOCKED, so replicas share
the work; a notice is marked on its entitlement in the transaction that queues the mail, and
its mail id derives from the entitlement and the end date, so each end date is announced once
whatever the replicas, retries and restarts. A renewal moves the end date, which earns its own
notice. An access ends (revoked, reason ``expired``) at the first sweep after its end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from coursemesh.commerce.app.ports import AccessExpiryStore
from coursemesh.commerce.domain.access import expiry_notice
from coursemesh.commerce.domain.entitlements import expire

BATCH = 200


async def end_expired_access(store: AccessExpiryStore, *, now: datetime, batch: int = BATCH) -> int:
    """Revoke one batch of accesses whose end has passed; returns how many."""
    async with store.transaction() as tx:
        ended = await tx.claim_ended(now, batch)
        for ent in ended:
            await tx.entitlements.save(expire(ent, now))
        return len(ended)


async def queue_expiry_notices(
    store: AccessExpiryStore, *, now: datetime, notice: timedelta, batch: int = BATCH
) -> int:
    """Queue the notice of one batch of accesses ending within ``notice``; returns how many."""
    async with store.transaction() as tx:
        ending = await tx.claim_ending(now, now + notice, batch)
        for access in ending:
            await tx.queue_notice(expiry_notice(access))
        return len(ending)


async def run_access_expiry(
    store: AccessExpiryStore,
    *,
    notice: timedelta,
    interval: float,
    stop: asyncio.Event,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Sweep until stopped: full batches sweep again at once, otherwise wait ``interval``."""
    while not stop.is_set():
        now = clock()
        noticed = await queue_expiry_notices(store, now=now, notice=notice)
        ended = await end_expired_access(store, now=now)
        if max(noticed, ended) >= BATCH:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
