"""Webhook processing rate: signed ``payment.completed`` webhooks through the gateway.

The stack is started exactly as ``make up`` does (``coursemesh.devstack.stack.Stack``) with a
known ``COMMERCE_SANDBOX_WEBHOOK_KEY``, seeded through the gateway (``bench.http.Seeder``): one
organization with a course priced at 49.00 and its payment account onboarded at the sandbox
(``bench.common.enable_payments``), then ``--webhooks`` pending paid checkouts, one per distinct
buyer. Nobody presses Pay: the benchmark plays the sandbox provider itself. It settles
each session as the page's Pay does (``status = 'paid'``: the provider applies a completion only
for a session it settled), without queueing the provider's own delivery, and POSTs exactly what
its ``sandbox-webhook-sender`` would (the body from the provider's own session rows and
``event_body``, Standard Webhooks headers signed with the org's derived secret, signed at send
time as the provider does at each attempt) to ``/webhooks/payments/<orgId>`` from
``--connections`` concurrent keep-alive HTTP/1.1 connections (raw asyncio streams, like
``bench.loadgen``, so the client costs little of the shared cores).

Reported: applied webhooks/s (every response must be ``applied``, every entitlement active,
one receipt each), p50/p90/p99 latency, the ratio to the hello-world ceiling measured in the
same run, and the replay: the same webhooks again (same ids and bodies, re-signed), every one
answered ``duplicate`` with no entitlement version, transition or receipt added.

    uv run python -m bench webhooks [--webhooks 1500] [--connections 32] [--duration 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import (
    add_trace_option,
    bench_stack,
    enable_payments,
    hello_world_ceiling,
    record,
)
from bench.http import Seeder
from bench.loadgen import _percentile, read_response
from coursemesh.commerce.adapters.sandbox import event_body, organization_webhook_secret, sign
from coursemesh.commerce.adapters.tables import (
    entitlement_transitions,
    entitlements,
    receipts,
    sandbox_sessions,
)

PRICE_CENTS = 4900


@dataclass(frozen=True)
class Delivery:
    """One webhook as the provider would queue it: its id (``webhook-id``) and JSON body."""

    event_id: str
    body: str


@dataclass
class Phase:
    seconds: float
    latencies: list[float]
    statuses: Counter[str]  # "<http status> <body status>"

    def summary(self, expected: str) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        done = self.statuses[f"200 {expected}"]
        return {
            "webhooks": len(ordered),
            "seconds": round(self.seconds, 3),
            f"{expected}": done,
            f"{expected}_per_s": round(done / self.seconds, 1),
            "p50_ms": round(_percentile(ordered, 0.50) * 1000, 2),
            "p90_ms": round(_percentile(ordered, 0.90) * 1000, 2),
            "p99_ms": round(_percentile(ordered, 0.99) * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2),
            "statuses": dict(self.statuses),
        }


# --- seeding -------------------------------------------------------------------------------


async def _checkouts(seeder: Seeder, course: str, count: int, concurrency: int) -> list[str]:
    """``count`` pending paid checkouts through the gateway, distinct buyers; the session ids."""
    run = uuid.uuid4().hex[:6]
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=seeder.stack.gateway_url, timeout=60) as client:

        async def one(i: int) -> str:
            sub = f"bench_payer_{run}_{i}"
            async with gate:
                response = await client.post(
                    f"/courses/{course}/checkout", headers=seeder.auth(sub), json={}
                )
            if response.status_code != 201:
                raise RuntimeError(f"checkout {i}: {response.status_code} {response.text}")
            url = response.json()["paymentPageUrl"]
            if not url:
                raise RuntimeError("the course is free: no payment session")
            return str(urlsplit(url).path.rsplit("/", 1)[-1])

        return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _deliveries(database_url: str, session_ids: list[str]) -> list[Delivery]:
    """Settle each session as Pay does, and what the provider would send for it:
    ``payment.completed``."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            rows = (
                (
                    await conn.execute(
                        sa.update(sandbox_sessions)
                        .where(sandbox_sessions.c.id.in_(session_ids))
                        .values(status="paid")
                        .returning(sandbox_sessions)
                    )
                )
                .mappings()
                .all()
            )
    finally:
        await engine.dispose()
    if len(rows) != len(session_ids):
        raise RuntimeError(f"{len(rows)} sandbox sessions for {len(session_ids)} checkouts")
    return [Delivery(*event_body("payment.completed", row)) for row in rows]


async def _state(database_url: str, course: str) -> dict[str, Any]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            ents = (
                await conn.execute(
                    sa.select(entitlements.c.status, entitlements.c.version).where(
                        entitlements.c.course_id == uuid.UUID(course)
                    )
                )
            ).all()
            transitions = await conn.scalar(
                sa.select(sa.func.count()).select_from(entitlement_transitions)
            )
            receipt_rows = await conn.scalar(sa.select(sa.func.count()).select_from(receipts))
    finally:
        await engine.dispose()
    return {
        "statuses": dict(Counter(status for status, _ in ents)),
        "version_sum": sum(version for _, version in ents),
        "transitions": int(transitions or 0),
        "receipts": int(receipt_rows or 0),
    }


# --- the provider's deliveries over raw keep-alive connections -------------------------------


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    return await read_response(reader)


async def _deliver_all(
    gateway: str, org: str, key: str, deliveries: list[Delivery], connections: int
) -> Phase:
    parts = urlsplit(gateway)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = f"/webhooks/payments/{org}"
    secret = organization_webhook_secret(key, uuid.UUID(org))
    queue = iter(deliveries)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()

    def request(delivery: Delivery) -> bytes:
        signed = sign(secret, delivery.event_id, delivery.body, datetime.now(UTC))
        body = delivery.body.encode()
        head = [
            f"POST {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Connection: keep-alive",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in signed.items()),
        ]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for delivery in queue:  # shared iterator: each delivery goes out once
                started = time.perf_counter()
                status, body = await _exchange(reader, writer, request(delivery))
                latencies.append(time.perf_counter() - started)
                outcome = json.loads(body).get("status") if status == 200 else None
                statuses[f"{status} {outcome}"] += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return Phase(time.perf_counter() - started, latencies, statuses)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a bench dependency
        return asyncio.new_event_loop()


def run(count: int, connections: int, duration: float, trace_sample_ratio: float) -> dict[str, Any]:
    key = secrets.token_urlsafe(32)
    results: dict[str, Any] = {
        "webhooks": count,
        "connections": connections,
        "trace_sample_ratio": trace_sample_ratio,
    }
    with bench_stack(
        "webhooks", trace_sample_ratio, extra_env={"COMMERCE_SANDBOX_WEBHOOK_KEY": key}
    ) as stack:
        seeder = Seeder(stack)
        org, course = seeder.course(days=7)
        seeder.call(
            "PATCH",
            f"/organizations/{org}/courses/{course}/price",
            "bench_staff",
            {"priceInCents": PRICE_CENTS},
        )
        enable_payments(seeder.http, org, seeder.auth("bench_staff"))
        assert stack.endpoints is not None
        db = stack.endpoints.database_url
        loop = _new_loop()
        try:
            started = time.perf_counter()
            sessions = loop.run_until_complete(_checkouts(seeder, course, count, 16))
            results["checkouts_per_s"] = round(count / (time.perf_counter() - started), 1)
            deliveries = loop.run_until_complete(_deliveries(db, sessions))
            before = loop.run_until_complete(_state(db, course))
            if before["statuses"] != {"pending": count}:
                raise RuntimeError(f"expected {count} pending entitlements: {before}")

            results["hello_world"] = hello_world_ceiling(duration)
            ceiling = results["hello_world"]["rps"]

            first = loop.run_until_complete(
                _deliver_all(stack.gateway_url, org, key, deliveries, connections)
            )
            applied = loop.run_until_complete(_state(db, course))
            results["applied"] = first.summary("applied")
            results["applied"]["ratio_to_hello"] = round(
                results["applied"]["applied_per_s"] / ceiling, 3
            )
            if first.statuses != Counter({"200 applied": count}):
                raise RuntimeError(f"not every webhook applied: {first.statuses}")
            if applied["statuses"] != {"active": count} or applied["receipts"] != count:
                raise RuntimeError(f"not every entitlement activated once: {applied}")

            replay = loop.run_until_complete(
                _deliver_all(stack.gateway_url, org, key, deliveries, connections)
            )
            after = loop.run_until_complete(_state(db, course))
            results["replay"] = replay.summary("duplicate")
            results["replay"]["ratio_to_hello"] = round(
                results["replay"]["duplicate_per_s"] / ceiling, 3
            )
            if replay.statuses != Counter({"200 duplicate": count}) or after != applied:
                raise RuntimeError(f"the replay changed something: {replay.statuses} {after}")
            results["state"] = {
                "before": before,
                "after_applied": applied,
                "after_replay": after,
            }
        finally:
            loop.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--webhooks", type=int, default=1500)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=8.0, help="hello-world seconds")
    add_trace_option(parser)
    args = parser.parse_args(argv)
    record(
        "webhooks",
        run(args.webhooks, args.connections, args.duration, args.trace_sample_ratio),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
