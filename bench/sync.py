"""Offline sync (``POST /me/sync`` and ``/me/sync/operations``) through the gateway.

One buyer holds ``--courses`` trainer courses (14 days each, bought through the gateway). Three
figures, in the same run and stack:

- **unchanged library**: ``POST /me/sync`` with the buyer's current cursor under the shared load
  generator (32 connections), as req/s, its ratio to the bare hello-world ceiling and the CPU per
  request of every process; next to it the v1 handshake of 50 custom courses (``bench.http``'s
  seeding), the figure the unchanged sync is held to (ratio >= the handshake's);
- **first sync**: a device with no cursor paging through the whole library, sequentially, as
  milliseconds per complete first sync (median and max of ``--rounds``);
- **offline batch**: ``--ops`` operations in one ``POST /me/sync/operations`` on a 90-day course
  (half completes, then the same items unmarked a second later), as milliseconds per batch and
  operations per second (median of ``--rounds``).

    uv run python -m bench sync [--courses 50] [--ops 200] [--rounds 5] [--duration 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import (
    add_trace_option,
    bench_stack,
    hello_world_ceiling,
    load_with_cpu,
    record,
    with_ratio,
)
from bench.http import Seeder, seed_custom_courses


def _first_sync(seeder: Seeder, buyer: str) -> tuple[str, int]:
    """Page through the whole library from no cursor: the final cursor and the courses seen."""
    body: dict[str, Any] = {}
    seen = 0
    while True:
        page = seeder.call("POST", "/me/sync", buyer, body)
        seen += len(page["courses"])
        if not page["more"]:
            return page["cursor"], seen
        body = {"cursor": page["cursor"]}


def _batch(course: str, items: list[tuple[str, int]], start: datetime) -> dict[str, Any]:
    """Complete each (workout, day) at ``start`` + i ms, then unmark it a second later."""
    operations: list[dict[str, Any]] = []
    for kind, offset in (("complete", timedelta(0)), ("unmark", timedelta(seconds=1))):
        for i, (workout, day) in enumerate(items):
            at = start + offset + timedelta(milliseconds=i)
            operations.append(
                {
                    "id": str(uuid.uuid4()),
                    "type": kind,
                    "courseId": course,
                    "workoutId": workout,
                    "dayOffset": day,
                    "at": at.isoformat(),
                }
            )
    return {"operations": operations}


def run(
    courses: int, ops: int, rounds: int, duration: float, trace_sample_ratio: float
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "config": {"courses": courses, "ops": ops, "rounds": rounds, "duration_s": duration}
    }
    with bench_stack("sync", trace_sample_ratio) as stack:
        seeder = Seeder(stack)
        buyer = "bench_sync_buyer"
        started = time.perf_counter()
        for _ in range(courses):
            _org, course = seeder.course(days=14)
            seeder.call("POST", f"/courses/{course}/checkout", buyer, {}, ok=201)
        print(
            f"  {courses} courses bought in {time.perf_counter() - started:.0f} s", file=sys.stderr
        )

        firsts: list[float] = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            cursor, seen = _first_sync(seeder, buyer)
            firsts.append((time.perf_counter() - t0) * 1000)
            if seen != courses:
                raise RuntimeError(f"the first sync held {seen} courses, not {courses}")
        results["first_sync_ms"] = {
            "median": round(statistics.median(firsts), 1),
            "max": round(max(firsts), 1),
        }

        gw = stack.gateway_url
        headers = {**seeder.auth(buyer), "Content-Type": "application/json"}
        ceiling = hello_world_ceiling(duration)
        results["hello_world"] = ceiling
        unchanged = load_with_cpu(
            stack,
            f"{gw}/me/sync",
            duration=duration,
            method="POST",
            body=json.dumps({"cursor": cursor}),
            headers=headers,
        )
        if set(unchanged["statuses"]) != {"200"}:
            raise RuntimeError(f"the unchanged sync did not answer 200 only: {unchanged}")
        results["unchanged_sync"] = with_ratio(unchanged, ceiling)
        assert stack.endpoints is not None
        held = asyncio.run(seed_custom_courses(stack.endpoints.database_url, buyer, 50))
        results["handshake_50"] = with_ratio(
            load_with_cpu(
                stack,
                f"{gw}/me/custom-courses/handshake",
                duration=duration,
                method="POST",
                body=json.dumps({"courses": held}),
                headers=headers,
            ),
            ceiling,
        )
        results["unchanged_sync_vs_handshake"] = round(
            results["unchanged_sync"]["ratio_to_hello"] / results["handshake_50"]["ratio_to_hello"],
            3,
        )

        _org, long_course = seeder.course(days=90)
        seeder.call("POST", f"/courses/{long_course}/checkout", buyer, {}, ok=201)
        seeder.call("POST", f"/me/courses/{long_course}/start", buyer, {})
        view = seeder.call("GET", f"/me/courses/{long_course}", buyer)
        items = [(i["workoutId"], d["dayOffset"]) for d in view["days"] for i in d["items"]]
        half = ops // 2
        if len(items) < half:
            raise RuntimeError(f"--ops {ops} needs {half} items; the course has {len(items)}")
        batches: list[float] = []
        base = datetime.now(UTC) - timedelta(hours=2)
        for r in range(rounds):
            body = _batch(long_course, items[:half], base + timedelta(minutes=r))
            t0 = time.perf_counter()
            answer = seeder.call("POST", "/me/sync/operations", buyer, body)
            batches.append((time.perf_counter() - t0) * 1000)
            if answer["rejected"] or len(answer["applied"]) != 2 * half:
                raise RuntimeError(f"the batch was not applied whole: {answer['rejected'][:3]}")
        batch_ms = statistics.median(batches)
        results["offline_batch"] = {
            "operations": 2 * half,
            "median_ms": round(batch_ms, 1),
            "max_ms": round(max(batches), 1),
            "operations_per_s": round(2 * half / (batch_ms / 1000)),
        }
        print(
            f"first sync of {courses}: {results['first_sync_ms']['median']} ms; unchanged "
            f"sync {unchanged['rps']:.0f} req/s (ratio "
            f"{results['unchanged_sync']['ratio_to_hello']}) vs handshake "
            f"{results['handshake_50']['rps']:.0f} req/s (ratio "
            f"{results['handshake_50']['ratio_to_hello']}); offline batch of {2 * half}: "
            f"{results['offline_batch']['median_ms']} ms",
            file=sys.stderr,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--courses", type=int, default=50)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=8.0)
    add_trace_option(parser)
    args = parser.parse_args(argv)
    record(
        "sync",
        run(args.courses, args.ops, args.rounds, args.duration, args.trace_sample_ratio),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
