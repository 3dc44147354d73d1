"""What read-your-writes costs a client calling back to back, through the gateway:

- ``org_then_offer``: create an organization (catalog), then at once an offer (commerce, which
  must have applied the owner's membership): the offer's latency, against a second offer for
  the same organization (projection long in place) — the difference is the added latency;
- ``checkout_then_player``: a free checkout (commerce), then at once the player (learning, which
  must have applied the entitlement), against the same player read again;
- ``unknown_404``: a genuinely unknown id on the storefront (catalog) and the player (learning):
  how long a true 404 takes, against a positive read of the same route.

Every call is checked: a wrong status fails the run (there must be none).

    uv run python -m bench consistency [--rounds 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from typing import Any

import httpx

from bench.common import add_trace_option, bench_stack, record
from bench.http import Seeder


def _timed(http: httpx.Client, method: str, path: str, status: int, **kw: Any) -> float:
    started = time.perf_counter()
    response = http.request(method, path, **kw)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} (wanted {status}) {response.text[:300]}"
        )
    return elapsed


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50_ms": pct(0.5), "p99_ms": pct(0.99), "mean_ms": round(statistics.fmean(ordered), 2)}


def _compare(cross: list[float], warm: list[float]) -> dict[str, Any]:
    first, again = _summary(cross), _summary(warm)
    return {
        "right_after_the_write": first,
        "projection_in_place": again,
        "added_p50_ms": round(first["p50_ms"] - again["p50_ms"], 2),
        "added_p99_ms": round(first["p99_ms"] - again["p99_ms"], 2),
    }


def run(rounds: int, trace_sample_ratio: float) -> dict[str, Any]:
    results: dict[str, Any] = {"trace_sample_ratio": trace_sample_ratio, "rounds": rounds}
    with bench_stack("consistency", trace_sample_ratio) as stack:
        seeder = Seeder(stack)
        http = seeder.http
        _org, course = seeder.course(days=7)

        cross: list[float] = []
        warm: list[float] = []
        for i in range(rounds):
            owner = seeder.auth(f"bench_owner_{i}")
            slug = f"ryw-{uuid.uuid4().hex[:10]}"
            org = seeder.call(
                "POST",
                "/organizations",
                f"bench_owner_{i}",
                {"name": slug, "slug": slug, "currency": "EUR"},
                ok=201,
            )["id"]
            for samples in (cross, warm):
                code = "X" + uuid.uuid4().hex[:5].upper()
                offer = {"code": code, "title": "Calm", "priceInCents": 0}
                path = f"/organizations/{org}/custom-course-offers"
                samples.append(_timed(http, "POST", path, 201, headers=owner, json=offer))
        results["org_then_offer"] = _compare(cross, warm)

        cross, warm = [], []
        player = f"/me/courses/{course}"
        for i in range(rounds):
            buyer = seeder.auth(f"bench_ryw_buyer_{i}")
            _timed(http, "POST", f"/courses/{course}/checkout", 201, headers=buyer)
            for samples in (cross, warm):
                samples.append(_timed(http, "GET", player, 200, headers=buyer))
        results["checkout_then_player"] = _compare(cross, warm)

        buyer = seeder.auth("bench_ryw_buyer_0")
        unknown: dict[str, list[float]] = {"storefront": [], "player": []}
        known: dict[str, list[float]] = {"storefront": [], "player": []}
        for _ in range(rounds):
            missing = uuid.uuid4()
            unknown["storefront"].append(_timed(http, "GET", f"/public/courses/{missing}", 404))
            known["storefront"].append(_timed(http, "GET", f"/public/courses/{course}", 200))
            unknown["player"].append(
                _timed(http, "GET", f"/me/courses/{missing}", 404, headers=buyer)
            )
            known["player"].append(_timed(http, "GET", player, 200, headers=buyer))
        results["unknown_404"] = {
            route: {"unknown_404": _summary(unknown[route]), "known_200": _summary(known[route])}
            for route in unknown
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    add_trace_option(parser)
    args = parser.parse_args(argv)
    record("consistency", run(args.rounds, args.trace_sample_ratio))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
