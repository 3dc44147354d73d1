"""The sender: claims due deliveries, checks where they would go, signs and sends them, and
records what happened. Several processes may run it (claims are leased rows); one endpoint
has at most one delivery in flight per process, so a slow or dead receiver holds one slot of
the pool and never delays other organizations' deliveries."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from coursemesh.chassis.errors import DomainError
from coursemesh.integrations.app.ports import (
    ClaimedDelivery,
    DeliveryQueue,
    Resolver,
    Sender,
    SendResult,
)
from coursemesh.integrations.domain.outcome import outcome_of
from coursemesh.integrations.domain.schedule import retry_delay
from coursemesh.integrations.domain.secrets import signature_header, signing_secrets
from coursemesh.integrations.domain.ssrf import check_addresses, literal_address, parse_endpoint_url

log = logging.getLogger("coursemesh.integrations.sender")


@dataclass(frozen=True, slots=True)
class SenderPolicy:
    allow_loopback: bool
    retry_scale: float
    timeout: float
    concurrency: int
    lease_seconds: float
    poll_interval: float
    retention: timedelta


class DeliverySender:
    def __init__(
        self,
        queue: DeliveryQueue,
        resolver: Resolver,
        sender: Sender,
        policy: SenderPolicy,
        now: Callable[[], datetime],
    ) -> None:
        self._queue = queue
        self._resolver = resolver
        self._sender = sender
        self._policy = policy
        self._now = now
        self._wake = asyncio.Event()
        self._busy: dict[uuid.UUID, asyncio.Task[None]] = {}

    def wake(self) -> None:
        self._wake.set()

    async def run_forever(self) -> None:
        last_purge = 0.0
        try:
            while True:
                await self.send_due()
                if time.monotonic() - last_purge > 3600:
                    last_purge = time.monotonic()
                    await self._queue.purge(self._now() - self._policy.retention)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._policy.poll_interval)
                self._wake.clear()
        finally:
            for task in self._busy.values():
                task.cancel()

    async def send_due(self) -> int:
        """Claim what is due (as many as the pool has room for) and start sending it."""
        room = self._policy.concurrency - len(self._busy)
        if room <= 0:
            return 0
        claimed = await self._queue.claim_due(
            self._now(), room, self._policy.lease_seconds, list(self._busy)
        )
        for delivery in claimed:
            key = delivery.endpoint.id
            task = asyncio.create_task(self.deliver(delivery))
            self._busy[key] = task
            task.add_done_callback(functools.partial(self._done, key))
        return len(claimed)

    def _done(self, endpoint_id: uuid.UUID, _task: asyncio.Task[None]) -> None:
        self._busy.pop(endpoint_id, None)
        self._wake.set()  # room in the pool, and maybe the endpoint's next delivery is due

    async def deliver(self, delivery: ClaimedDelivery) -> None:
        try:
            result = await self._attempt(delivery)
        except Exception as exc:
            # A fault of ours, not the receiver's: still an attempt, logged and retried on the
            # schedule, so the delivery log shows it instead of a silent wait for the lease.
            log.exception("delivery %s: attempt failed", delivery.webhook_id)
            result = SendResult(status=None, latency_ms=0, error=f"internal: {type(exc).__name__}")
        try:
            await self._record(delivery, result)
        except Exception:
            # The lease runs out and the delivery is claimed again: nothing is lost.
            log.exception("delivery %s: not recorded", delivery.webhook_id)

    async def _attempt(self, delivery: ClaimedDelivery) -> SendResult:
        endpoint = delivery.endpoint
        started = time.monotonic()
        try:
            target = parse_endpoint_url(endpoint.url, allow_insecure=self._policy.allow_loopback)
            literal = literal_address(target.host)
            addresses = (
                [literal] if literal else await self._resolver.resolve(target.host, target.port)
            )
            address = check_addresses(
                target.host, addresses, allow_loopback=self._policy.allow_loopback
            )
        except DomainError as refused:
            elapsed = int((time.monotonic() - started) * 1000)
            return SendResult(status=None, latency_ms=elapsed, error=f"refused: {refused.detail}")
        except OSError as exc:
            elapsed = int((time.monotonic() - started) * 1000)
            return SendResult(status=None, latency_ms=elapsed, error=f"dns: {exc}")
        now = self._now()
        secrets = signing_secrets(
            endpoint.secret, endpoint.previous_secret, endpoint.previous_secret_expires_at, now
        )
        headers = {
            "content-type": "application/json",
            "user-agent": "coursemesh-webhooks/1",
            "webhook-id": delivery.webhook_id,
            # The send time, not the event's: receivers refuse timestamps minutes away.
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature_header(secrets, delivery.webhook_id, now, delivery.body),
        }
        return await self._sender.send(
            target, address, headers, delivery.body, self._policy.timeout
        )

    async def _record(self, delivery: ClaimedDelivery, result: SendResult) -> None:
        now = self._now()
        outcome = outcome_of(result.status)
        attempts = delivery.attempts + 1
        if outcome == "delivered":
            await self._queue.record(
                delivery, result, now, status="delivered", next_attempt_at=None
            )
            return
        if outcome == "gone":
            await self._queue.record(
                delivery,
                result,
                now,
                status="failed",
                next_attempt_at=None,
                disable_reason="the receiver answered 410 Gone",
            )
            return
        delay = retry_delay(
            attempts,
            scale=self._policy.retry_scale,
            retry_after=result.retry_after if outcome == "slow_down" else None,
        )
        if delay is None:
            await self._queue.record(delivery, result, now, status="failed", next_attempt_at=None)
            return
        next_at = now + timedelta(seconds=delay)
        await self._queue.record(delivery, result, now, status="pending", next_attempt_at=next_at)
