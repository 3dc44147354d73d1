"""HTTP benchmarks through the gateway, each a ratio of a bare hello-world measured in the same
run (same machine, same server, same load generator):

- gateway overhead: the storefront direct to catalog vs through Caddy;
- storefront ``GET /public/courses/:id`` (goal >= 0.40x, p99 <= 20 ms);
- free checkout ``POST /courses/:id/checkout``, a new buyer per request (>= 0.12x, p99 <= 40 ms);
- player ``GET /me/courses/:id`` on a 90-day curriculum (goal >= 0.20x, p99 <= 15 ms);
- handshake ``POST /me/custom-courses/handshake``, 50 unchanged courses (>= 0.25x, p99 <= 25 ms).

The stack is started exactly as ``make up`` does (``coursemesh.devstack.stack.Stack``), on a
fresh data dir, and seeded through the gateway (custom courses straight into custom-gen's
tables: generating audio for 50 courses would measure the TTS engine, not the handshake).

    uv run python -m bench http [--duration 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import uuid
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import (
    add_trace_option,
    bench_stack,
    hello_world_ceiling,
    load,
    load_with_cpu,
    record,
    reference_apps,
)
from bench.servers import add_server_option
from coursemesh.devstack.stack import Stack


class Seeder:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.http = httpx.Client(base_url=stack.gateway_url, timeout=30)

    def token(self, sub: str) -> str:
        return self.stack.identity.mint_token(sub, email=f"{sub}@bench.example", name=sub)

    def auth(self, sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub)}"}

    def call(self, method: str, path: str, sub: str, body: Any = None, ok: int = 200) -> Any:
        response = self.http.request(method, path, headers=self.auth(sub), json=body)
        if response.status_code != ok:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def course(self, days: int = 90) -> tuple[str, str]:
        staff = "bench_staff"
        org = self.call(
            "POST",
            "/organizations",
            staff,
            {"name": "Bench Studio", "slug": f"bench-{uuid.uuid4().hex[:8]}", "currency": "EUR"},
            ok=201,
        )["id"]
        workouts = [
            self.call(
                "POST",
                f"/organizations/{org}/workouts",
                staff,
                {"title": f"Workout {i}", "description": "d", "durationMinutes": 20},
                ok=201,
            )["id"]
            for i in range(10)
        ]
        course = self.call(
            "POST",
            f"/organizations/{org}/courses",
            staff,
            {"name": "90-day plan", "durationDays": days, "previewType": "all_titles"},
            ok=201,
        )["id"]
        for day in range(days):
            body: dict[str, Any] = (
                {"dayOffset": day, "isRest": True}
                if day % 7 == 6
                else {
                    "dayOffset": day,
                    "workoutIds": [workouts[day % 10], workouts[(day + 3) % 10]],
                }
            )
            self.call("POST", f"/organizations/{org}/courses/{course}/days", staff, body)
        self.call("POST", f"/organizations/{org}/courses/{course}/publish", staff)
        # Back to back, as a client may: each service has caught up with the writes before.
        self.call(
            "PATCH", f"/organizations/{org}/courses/{course}/price", staff, {"priceInCents": 0}
        )
        self.call("GET", f"/public/courses/{course}", staff)
        return org, course

    def buyer_with_course(self, course: str) -> str:
        buyer = "bench_buyer"
        self.call("POST", f"/courses/{course}/checkout", buyer, {}, ok=201)
        self.call("GET", f"/me/courses/{course}", buyer)
        return buyer


async def seed_custom_courses(database_url: str, user: str, count: int) -> list[dict[str, str]]:
    from coursemesh.customgen.adapters.tables import custom_courses
    from coursemesh.customgen.domain.course import calculate_checksum

    engine = create_async_engine(
        database_url, connect_args={"server_settings": {"search_path": "customgen"}}
    )
    held: list[dict[str, str]] = []
    async with engine.begin() as conn:
        for i in range(count):
            course_id = uuid.uuid4()
            data = {
                "schema_version": 1,
                "metadata": {"title": f"Course {i}", "course_code": "X99ENB"},
                "audio_files": [
                    {"id": str(uuid.uuid4()), "title": f"Session {n}", "checksum": "0" * 32}
                    for n in range(6)
                ],
                "scripts": [
                    {"session": n, "text": "Breathe in, breathe out. " * 40} for n in range(6)
                ],
                "workbooks": [],
            }
            summed = calculate_checksum(data)
            await conn.execute(
                sa.insert(custom_courses).values(
                    id=course_id,
                    user_id=user,
                    organization_id=uuid.uuid4(),
                    purchase_id=uuid.uuid4(),
                    course_code="X99ENB",
                    title=f"Course {i}",
                    description="bench",
                    data=summed.text,
                    checksum=summed.checksum,
                    file_size_bytes=summed.size_bytes,
                    status="ready",
                    version=1,
                )
            )
            held.append({"id": str(course_id), "checksum": summed.checksum})
    await engine.dispose()
    return held


#: Buyers minted per free-checkout run: more than it can do per second, so every request is a
#: first purchase (the load generator cycles through the tokens; a repeat would be a cheap 409).
CHECKOUTS_PER_S = 1500

#: Each hot path and the reference app doing its kind of work (``bench/reference.py``).
REFERENCE_OF = {
    "storefront": "hello",
    "player_90_days": "pk_select",
    "handshake_50": "pk_select",
    "free_checkout": "write_outbox_notify_projected",
}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs of one load: throughput, latency, CPU per request."""
    names = runs[0].get("cpu_ms_per_request", {})
    out: dict[str, Any] = {
        "rps": round(statistics.median(r["rps"] for r in runs)),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 2),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 2),
        "errors": sum(r["errors"] for r in runs),
        "rps_runs": [round(r["rps"]) for r in runs],
    }
    if names:
        out["cpu_ms_per_request_total"] = round(
            statistics.median(r["cpu_ms_per_request_total"] for r in runs), 3
        )
        out["cpu_ms_per_request"] = {
            name: round(statistics.median(r["cpu_ms_per_request"][name] for r in runs), 3)
            for name in names
        }
    return out


def run(duration: float, trace_sample_ratio: float, runs: int, server: str) -> dict[str, Any]:
    """Every load ``runs`` times, each reference next to the hot paths it is the limit of."""
    loads: dict[str, list[dict[str, Any]]] = {}

    def measure(name: str, result: dict[str, Any]) -> None:
        """Keep a load's result; one answer that is not 2xx voids the benchmark."""
        failed = {s: c for s, c in result["statuses"].items() if not s.startswith("2")}
        if failed or result["errors"]:
            raise RuntimeError(f"{name}: {result['errors']} errors, statuses {failed}")
        loads.setdefault(name, []).append(result)

    with bench_stack("http", trace_sample_ratio, server=server) as stack:
        seeder = Seeder(stack)
        _org, course = seeder.course()
        buyer = seeder.buyer_with_course(course)
        assert stack.endpoints is not None
        held = asyncio.run(seed_custom_courses(stack.endpoints.database_url, buyer, 50))
        catalog = next(r for r in stack.replicas if r.spec.name == "catalog")
        gw = stack.gateway_url
        player_headers = {"Authorization": f"Bearer {seeder.token(buyer)}"}
        player = seeder.http.get(f"/me/courses/{course}", headers=player_headers)
        player.raise_for_status()  # the reference serves these very bytes
        player_body = player.content
        handshake = json.dumps({"courses": held})
        json_headers = {"Content-Type": "application/json"}
        tokens = stack.data_dir.parent / "tokens.txt"
        with reference_apps(stack, server, player_body) as ref:
            rgw, refs = ref.gateway_url, ref.processes
            for n in range(runs):
                measure("hello_world_direct", hello_world_ceiling(duration, server))
                measure(
                    "ref_hello", load_with_cpu(refs, f"{rgw}/public/ref/hello", duration=duration)
                )
                measure(
                    "storefront_direct",
                    load(f"{catalog.url}/public/courses/{course}", duration=duration),
                )
                measure(
                    "storefront",
                    load_with_cpu(stack, f"{gw}/public/courses/{course}", duration=duration),
                )
                measure(
                    "ref_pk_select",
                    load_with_cpu(
                        refs,
                        f"{rgw}/public/ref/documents/{ref.document_id}",
                        duration=duration,
                        headers=player_headers,  # the same request as the player's
                    ),
                )
                measure(
                    "player_90_days",
                    load_with_cpu(
                        stack,
                        f"{gw}/me/courses/{course}",
                        duration=duration,
                        headers=player_headers,
                    ),
                )
                measure(
                    "handshake_50",
                    load_with_cpu(
                        stack,
                        f"{gw}/me/custom-courses/handshake",
                        duration=duration,
                        method="POST",
                        body=handshake,
                        headers={**player_headers, **json_headers},
                    ),
                )
                tokens.write_text(
                    "\n".join(
                        seeder.token(f"bench_{n}_{i}")
                        for i in range(int(duration * CHECKOUTS_PER_S))
                    )
                    + "\n"
                )
                # The references get the checkout's request as it is, a buyer's token each.
                write = {
                    "duration": duration,
                    "method": "POST",
                    "body": "{}",
                    "headers": json_headers,
                    "tokens_file": tokens,
                }
                measure(
                    "ref_write_outbox_notify",
                    load_with_cpu(refs, f"{rgw}/public/ref/orders", **write),
                )
                with ref.consumer():
                    measure(
                        "ref_write_outbox_notify_projected",
                        load_with_cpu(refs, f"{rgw}/public/ref/orders", **write),
                    )
                measure(
                    "free_checkout",
                    load_with_cpu(stack, f"{gw}/courses/{course}/checkout", **write),
                )
    medians = {name: summary(results) for name, results in loads.items()}
    references = {
        name.removeprefix("ref_"): figures
        for name, figures in medians.items()
        if name.startswith("ref_")
    }
    paths: dict[str, Any] = {}
    for path, reference in REFERENCE_OF.items():
        figures, limit = medians[path], references[reference]
        paths[path] = {
            **figures,
            "reference": reference,
            "of_reference": {
                "rps": round(figures["rps"] / limit["rps"], 3),
                "cpu_per_request": round(
                    figures["cpu_ms_per_request_total"] / limit["cpu_ms_per_request_total"], 3
                ),
            },
            "ratio_to_hello": round(figures["rps"] / medians["hello_world_direct"]["rps"], 3),
        }
    return {
        "server": server,
        "trace_sample_ratio": trace_sample_ratio,
        "runs": runs,
        "duration_s": duration,
        "document_bytes": len(player_body),
        "hello_world_direct": medians["hello_world_direct"],
        "gateway_overhead": round(
            medians["storefront"]["rps"] / medians["storefront_direct"]["rps"], 3
        ),
        "references": references,
        "paths": paths,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3, help="runs of every load (medians)")
    add_server_option(parser)
    add_trace_option(parser)
    args = parser.parse_args(argv)
    record("http", run(args.duration, args.trace_sample_ratio, args.runs, args.server))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
