"""Abandoned checkouts: pending entitlements older than the TTL are revoked with cause
``checkout_expired``; the buyer can check out again (the same row is reopened).

A payment no pending entitlement waits for (a paid renewal of an access that goes on, a gift)
is ended the same way once older than the TTL: marked ``expired``, and a gift waiting for it
ends as its provider's expiry would end it. So neither holds a coupon's place nor shows as
pending for ever when the provider sends no expiry of its own (the sandbox's sessions just run
out). A completion that still arrives afterwards is applied as any late completion."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from coursemesh.commerce.app.ports import SweeperStore
from coursemesh.commerce.domain.entitlements import transition
from coursemesh.commerce.domain.gifts import gift_after_payment
from coursemesh.commerce.domain.payments import payment_status_after

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


async def expire_abandoned_payments(
    store: SweeperStore, *, ttl: timedelta, now: datetime | None = None, batch: int = BATCH
) -> int:
    """End one batch of open payments older than the TTL that no pending entitlement waits
    for; returns how many (claimed as checkouts are)."""
    now = now or datetime.now(UTC)
    async with store.transaction() as tx:
        payments = await tx.claim_abandoned_payments(now - ttl, batch)
        for payment in payments:
            status = payment_status_after(payment.status, "expired")
            assert status is not None  # claimed pending
            await tx.end_payment(payment, status, actor=ACTOR, now=now)
            gift = await tx.lock_gift_of(payment.id)
            step = None if gift is None else gift_after_payment(gift.status, "expired")
            if gift is not None and step is not None:
                await tx.save_gift(replace(gift, status=step))
        return len(payments)


async def run_sweeper(
    store: SweeperStore, ttl: timedelta, interval: float, stop: asyncio.Event
) -> None:
    """Sweep until stopped: a full batch sweeps again at once, otherwise wait ``interval``."""
    while not stop.is_set():
        swept = await expire_abandoned_checkouts(store, ttl=ttl)
        if max(swept, await expire_abandoned_payments(store, ttl=ttl)) >= BATCH:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
