"""Outgoing webhooks: what subscribing costs a checkout, and how fast deliveries go out.

1. Free checkouts through the gateway (distinct buyers) with no webhook endpoint registered.
2. The organization registers an endpoint subscribed to every event type, pointing at a local
   receiver (``bench/receiver.py``, its own process, answers 204 at once); the same load again.
   Every checkout now also becomes deliveries (``enrollment.activated``, ``lead.created``).
3. After the load, wait until the endpoint has no pending delivery left (through its delivery
   log, as staff would), then read the receiver's counts.

Reported: checkout req/s and CPU per request in both runs and their ratio; deliveries made,
distinct webhook ids received, deliveries/s from the first to the last one received, and how
long the backlog took to drain once the load stopped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from bench.common import ROOT, add_trace_option, bench_stack, load_with_cpu, record
from bench.http import Seeder
from coursemesh.contracts.webhooks import EVENT_TYPES

#: Buyers minted per second of load: more than the checkout rate, so every request is a first
#: purchase (a repeat would be a cheap 409).
CHECKOUTS_PER_S = 1500
DRAIN_DEADLINE_S = 600.0


def _checkouts(stack: Any, seeder: Seeder, course: str, prefix: str, duration: float) -> Any:
    tokens = stack.data_dir.parent / f"tokens-{prefix}.txt"
    count = int(duration * CHECKOUTS_PER_S)
    tokens.write_text("\n".join(seeder.token(f"{prefix}_{i}") for i in range(count)) + "\n")
    return load_with_cpu(
        stack,
        f"{stack.gateway_url}/courses/{course}/checkout",
        duration=duration,
        method="POST",
        body="{}",
        headers={"Content-Type": "application/json"},
        tokens_file=tokens,
    )


def _pending(seeder: Seeder, org: str, endpoint: str) -> int:
    page = seeder.call(
        "GET",
        f"/organizations/{org}/webhook-endpoints/{endpoint}/deliveries?status=pending&limit=100",
        "bench_staff",
    )
    return len(page["items"])


def run(duration: float, trace_sample_ratio: float) -> dict[str, Any]:
    results: dict[str, Any] = {"trace_sample_ratio": trace_sample_ratio}
    with bench_stack("deliveries", trace_sample_ratio) as stack:
        seeder = Seeder(stack)
        org, course = seeder.course(days=7)
        results["checkout_unsubscribed"] = _checkouts(stack, seeder, course, "plain", duration)

        receiver = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver", "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            assert receiver.stdout is not None
            port = json.loads(receiver.stdout.readline())["port"]
            endpoint = seeder.call(
                "POST",
                f"/organizations/{org}/webhook-endpoints",
                "bench_staff",
                {"url": f"http://127.0.0.1:{port}/", "eventTypes": sorted(EVENT_TYPES)},
                ok=201,
            )["id"]
            subscribed = _checkouts(stack, seeder, course, "subscribed", duration)
            load_end = time.monotonic()
            results["checkout_subscribed"] = subscribed
            results["checkout_ratio"] = round(
                subscribed["rps"] / results["checkout_unsubscribed"]["rps"], 3
            )
            deadline = load_end + DRAIN_DEADLINE_S
            while _pending(seeder, org, endpoint) and time.monotonic() < deadline:
                time.sleep(0.2)  # a benchmark's progress poll: nothing here depends on it
            drained = time.monotonic() - load_end
            with_stats = seeder.http.get(f"http://127.0.0.1:{port}/stats").json()
        finally:
            receiver.terminate()
            receiver.wait(timeout=15)
        window = (with_stats["last"] or 0) - (with_stats["first"] or 0)
        results["deliveries"] = {
            "checkouts": subscribed["requests"],
            "requests_received": with_stats["requests"],
            "distinct_webhook_ids": with_stats["unique"],
            "per_second": round(with_stats["unique"] / window, 1) if window > 0 else None,
            "drained_after_load_s": round(drained, 2),
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=8.0)
    add_trace_option(parser)
    args = parser.parse_args(argv)
    record("deliveries", run(args.duration, args.trace_sample_ratio))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
