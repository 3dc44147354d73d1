"""Player ``GET /me/courses/:id`` (90-day curriculum, through the gateway) as learning's tables
grow: is the player's latency independent of how many entitlements and completions there are?

The goal: >= 0.20x the bare hello-world's req/s and p99 <= 15 ms at 32 connections, and
p99 flat (within 20 %) from 10k to 1M entitlements with 10M completions in the tables.

The stack is started exactly as ``make up`` does, on a fresh data dir; ONE real 90-day course and
ONE real buyer are made through the gateway (``bench.http.Seeder``), and the buyer starts the
course and completes its first workouts through the player, so the measured request is a genuine
one. Then learning's own tables are grown directly with set-based SQL (``INSERT ... SELECT FROM
generate_series``, in chunks) to each size in turn:

- 2,000 filler courses in 200 filler organizations (copies of the real curriculum with their own
  item and workout ids), their workouts and an owner membership each;
- filler entitlements of other users (``ls_user_<n>``, three courses each): 1 in 100 on the real
  course, the rest spread over the filler courses; 1 in 50 pending, 1 in 50 revoked;
- an enrollment for ~78 % of them (not pending, not "bought but never started") and, for those,
  completions of the first items of their course in day order; the count per buyer varies
  (0 .. 2x the mean) and the mean is set so that the largest size holds ``--completions`` rows.

Every filler row satisfies the tables' keys and NOT NULLs (the learning schema declares no
foreign keys; the ids still point at rows that exist: courses, workouts, curriculum items).
After each growth step the grown tables get ``VACUUM (ANALYZE)`` (the statistics, and no
autovacuum of a fresh bulk load running during the measurement). At each size the player is
warmed up for a second, then measured with the shared load generator; the hello-world ceiling
is measured once, before the tables grow, and the player direct to the learning replica (no
gateway) once, at the smallest size. Each measurement also reports the CPU every process of the
stack spent per request (``cpu_ms_per_request``): on a shared machine throughput swings with
whatever else runs, while the CPU a request costs moves only with the code.

    uv run python -m bench learning_scale [--sizes 10000,100000,1000000]
        [--completions 10000000] [--duration 8]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from typing import Any

import asyncpg

from bench.common import (
    add_trace_option,
    bench_stack,
    hello_world_ceiling,
    load,
    load_with_cpu,
    record,
)
from bench.http import Seeder

FILLER_COURSES = 2_000  # in FILLER_COURSES // 10 organizations
ON_REAL_COURSE = 100  # 1 filler entitlement in 100 is on the real course
CHUNK = 100_000  # filler entitlements per INSERT (their completions go in the same step)
REAL_BUYER_COMPLETIONS = 13  # what the real buyer completes through the player
ENROLLED_SHARE = 39 / 50  # see _FILLER: not pending (1/50), not "never started" (10/50)
GOAL_RATIO, GOAL_P99_MS, FLAT = 0.20, 15.0, 0.20

# One row per filler entitlement number i in [lo, hi): every derived column the inserts need.
# Ids are md5-derived so the completions of a chunk can be made without reading anything back.
_FILLER = """
SELECT i,
       md5('ls-ent-' || i)::uuid AS entitlement_id,
       'ls_user_' || (i / 3) AS user_id,
       (i % {on_real} = 0) AS on_real,
       CASE WHEN i % {on_real} = 0 THEN '{real_course}'::uuid
            ELSE md5('ls-course-' || (i % {courses}))::uuid END AS course_id,
       CASE WHEN i % {on_real} = 0 THEN '{real_org}'::uuid
            ELSE md5('ls-org-' || ((i % {courses}) / 10))::uuid END AS organization_id,
       CASE WHEN i % 50 = 13 THEN 'pending' WHEN i % 50 = 29 THEN 'revoked'
            ELSE 'active' END AS status,
       (i % 50 <> 13 AND i % 5 <> 4) AS enrolled,
       least({items}, floor({mean} * 2 * ((i::bigint * 2654435761) % 4294967296)
                            / 4294967296.0))::int AS done,
       current_date - (i % 120) AS start_date
FROM generate_series({lo}, {hi} - 1) AS i
"""

_COURSES = """
INSERT INTO learning.courses (
    course_id, organization_id, name, description, image_url, duration_days, details_version,
    status, status_version, published_at, archived_at, lifecycle_version, curriculum_version,
    curriculum_days, curriculum, workout_item_count, curriculum_event_version)
SELECT f.course_id, f.organization_id, 'Filler course ' || f.c, r.description, r.image_url,
       r.duration_days, r.details_version, r.status, r.status_version, r.published_at,
       r.archived_at, r.lifecycle_version, r.curriculum_version, r.curriculum_days,
       (SELECT coalesce(jsonb_agg(jsonb_set(d.day, '{{items}}', coalesce(
                  (SELECT jsonb_agg(jsonb_set(jsonb_set(
                              it, '{{item_id}}',
                              to_jsonb(md5(f.course_id::text || (it ->> 'item_id'))::uuid)),
                              '{{workout_id}}',
                              to_jsonb(md5(f.organization_id::text
                                           || (it ->> 'workout_id'))::uuid))
                          ORDER BY o)
                   FROM jsonb_array_elements(d.day -> 'items') WITH ORDINALITY AS x(it, o)),
                  '[]'::jsonb)) ORDER BY d.o), '[]'::jsonb)
        FROM jsonb_array_elements(r.curriculum) WITH ORDINALITY AS d(day, o)),
       r.workout_item_count, r.curriculum_event_version
FROM (SELECT c, md5('ls-course-' || c)::uuid AS course_id,
             md5('ls-org-' || (c / 10))::uuid AS organization_id
      FROM generate_series(0, {courses} - 1) AS c) AS f
CROSS JOIN learning.courses AS r
WHERE r.course_id = '{real_course}'
"""

_WORKOUTS = """
INSERT INTO learning.workouts (workout_id, organization_id, title, description, duration_minutes,
                               instructions, media_urls, deleted_at, version)
SELECT md5(o.org::text || w.workout_id::text)::uuid, o.org, w.title, w.description,
       w.duration_minutes, w.instructions, w.media_urls, w.deleted_at, w.version
FROM (SELECT md5('ls-org-' || n)::uuid AS org
      FROM generate_series(0, {courses} / 10 - 1) AS n) AS o
CROSS JOIN learning.workouts AS w
WHERE w.organization_id = '{real_org}'
"""

_MEMBERSHIPS = """
INSERT INTO learning.memberships (organization_id, user_id, role, is_staff, version)
SELECT md5('ls-org-' || n)::uuid, 'ls_staff_' || n, 'owner', true, 1
FROM generate_series(0, {courses} / 10 - 1) AS n
"""

_ENTITLEMENTS = """
INSERT INTO learning.entitlements (entitlement_id, user_id, course_id, organization_id, status,
                                   access_revoked_at, version)
SELECT f.entitlement_id, f.user_id, f.course_id, f.organization_id, f.status,
       CASE WHEN f.status = 'revoked' THEN now() - interval '3 days' END,
       CASE WHEN f.status = 'active' THEN 1 ELSE 2 END
FROM ({filler}) AS f
"""

_ENROLLMENTS = """
INSERT INTO learning.enrollments (entitlement_id, user_id, course_id, organization_id,
                                  start_date, completed_at, restart_count, last_activity_at,
                                  version)
SELECT f.entitlement_id, f.user_id, f.course_id, f.organization_id, f.start_date, NULL,
       CASE WHEN f.i % 17 = 0 THEN 1 ELSE 0 END,
       least(now(), (f.start_date + f.done / 2) + time '18:00'),
       1 + f.done
FROM ({filler}) AS f
WHERE f.enrolled
"""

# The first `done` items of the buyer's course, in day order (items passed as arrays: $1 item
# ids, $2 workout ids, $3 day offsets of the real course; filler courses derive theirs).
_COMPLETIONS = """
INSERT INTO learning.completions (entitlement_id, item_id, workout_id, day_offset,
                                  curriculum_version, completed_at)
SELECT f.entitlement_id,
       CASE WHEN f.on_real THEN ($1::uuid[])[n]
            ELSE md5(f.course_id::text || ($1::uuid[])[n]::text)::uuid END,
       CASE WHEN f.on_real THEN ($2::uuid[])[n]
            ELSE md5(f.organization_id::text || ($2::uuid[])[n]::text)::uuid END,
       ($3::int[])[n],
       {curriculum_version},
       least(now(), (f.start_date + ($3::int[])[n]) + time '07:30')
FROM ({filler}) AS f
CROSS JOIN LATERAL generate_series(1, f.done) AS n
WHERE f.enrolled
"""

_GROWN = ("entitlements", "enrollments", "completions", "courses", "workouts", "memberships")


def _rows(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class Grower:
    """Grows learning's tables around the real course, one chunk of filler entitlements at a
    time; filler entitlement numbers 0 .. n-2 (plus the real buyer's row) make size n."""

    def __init__(self, dsn: str, course: uuid.UUID, mean_completions: float) -> None:
        self.dsn = dsn
        self.course = course
        self.mean = mean_completions
        self.made = 0  # filler entitlements made so far
        self.items: tuple[list[uuid.UUID], list[uuid.UUID], list[int]] = ([], [], [])
        self.constants: dict[str, Any] = {}

    async def prepare(self) -> dict[str, Any]:
        conn = await asyncpg.connect(self.dsn)
        try:
            real = await conn.fetchrow(
                "SELECT organization_id, curriculum_version, curriculum"
                " FROM learning.courses WHERE course_id = $1",
                self.course,
            )
            if real is None or real["curriculum_version"] is None:
                raise RuntimeError("the real course has no curriculum in learning yet")
            order = await conn.fetch(
                "SELECT (it ->> 'item_id')::uuid AS item_id,"
                " (it ->> 'workout_id')::uuid AS workout_id,"
                " (d ->> 'day_offset')::int AS day_offset"
                " FROM learning.courses,"
                " jsonb_array_elements(curriculum) AS d, jsonb_array_elements(d -> 'items') AS it"
                " WHERE course_id = $1"
                " ORDER BY (d ->> 'day_offset')::int, (it ->> 'position')::int",
                self.course,
            )
            self.items = (
                [r["item_id"] for r in order],
                [r["workout_id"] for r in order],
                [r["day_offset"] for r in order],
            )
            if self.mean * 2 > len(order):
                raise RuntimeError(
                    f"{self.mean:.1f} completions per buyer on average do not fit a course "
                    f"of {len(order)} items: raise the largest size or lower --completions"
                )
            self.constants = {
                "real_course": self.course,
                "real_org": real["organization_id"],
                "curriculum_version": real["curriculum_version"],
                "courses": FILLER_COURSES,
                "on_real": ON_REAL_COURSE,
                "items": len(order),
                "mean": repr(self.mean),
            }
            async with conn.transaction():
                await conn.execute(_COURSES.format(**self.constants))
                await conn.execute(_WORKOUTS.format(**self.constants))
                await conn.execute(_MEMBERSHIPS.format(**self.constants))
            await conn.execute("VACUUM (ANALYZE) learning.courses, learning.workouts")
            return {
                "course_items": len(order),
                "filler_courses": FILLER_COURSES,
                "filler_organizations": FILLER_COURSES // 10,
            }
        finally:
            await conn.close()

    async def grow_to(self, size: int) -> dict[str, Any]:
        target = size - 1  # the real buyer's entitlement is the first row
        conn = await asyncpg.connect(self.dsn)
        try:
            started = time.perf_counter()
            while self.made < target:
                lo, hi = self.made, min(target, self.made + CHUNK)
                filler = _FILLER.format(lo=lo, hi=hi, **self.constants)
                async with conn.transaction():
                    await conn.execute(_ENTITLEMENTS.format(filler=filler))
                    await conn.execute(_ENROLLMENTS.format(filler=filler))
                    await conn.execute(
                        _COMPLETIONS.format(filler=filler, **self.constants), *self.items
                    )
                self.made = hi
            inserted = time.perf_counter() - started
            await conn.execute("VACUUM (ANALYZE) " + ", ".join(f"learning.{t}" for t in _GROWN))
            total = time.perf_counter() - started
            counts = {
                t: int(await conn.fetchval(f"SELECT count(*) FROM learning.{t}"))
                for t in ("entitlements", "enrollments", "completions")
            }
            size_bytes = await conn.fetchval(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'learning' AND c.relkind = 'r'"
            )
            return {
                **counts,
                "learning_schema_mb": round(int(size_bytes) / 2**20),
                "insert_s": round(inserted, 1),
                "insert_and_vacuum_s": round(total, 1),
            }
        finally:
            await conn.close()


def _complete_first_items(seeder: Seeder, buyer: str, course: str, count: int) -> None:
    seeder.call("POST", f"/me/courses/{course}/start", buyer, {})
    view = seeder.call("GET", f"/me/courses/{course}", buyer)
    items = [(d["dayOffset"], i["workoutId"]) for d in view["days"] for i in d["items"]]
    for day, workout in items[:count]:
        seeder.call(
            "POST", f"/me/courses/{course}/workouts/{workout}/complete", buyer, {"dayOffset": day}
        )


def _cpu_of(cpu_ms_per_request: dict[str, float], process: str) -> float:
    """The CPU per request of every process of one kind (a service's replicas)."""
    return sum(ms for name, ms in cpu_ms_per_request.items() if name.split("-")[0] == process)


def _fmt_table(rows: list[dict[str, Any]], hello_rps: float) -> str:
    head = (
        f"{'entitlements':>12} {'completions':>12} {'rps':>7} {'ratio':>6} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'p99/min':>7} {'flat':>5} {'gen s':>6} "
        f"{'cpu ms/req: learning':>20} {'postgres':>8} {'caddy':>6}"
    )
    lines = [f"hello-world: {hello_rps:.0f} req/s", head]
    for r in rows:
        cpu = r["cpu_ms_per_request"]
        lines.append(
            f"{r['entitlements']:>12,} {r['completions']:>12,} {r['rps']:>7.0f} "
            f"{r['ratio_to_hello']:>6.3f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} "
            f"{r['p99_vs_smallest']:>7.3f} {r['p99_within_20pct']!s:>5} "
            f"{r['generation']['insert_and_vacuum_s']:>6.1f} "
            f"{_cpu_of(cpu, 'learning'):>20.3f} {_cpu_of(cpu, 'postgres'):>8.3f} "
            f"{_cpu_of(cpu, 'caddy'):>6.3f}"
        )
    return "\n".join(lines)


def run(
    sizes: list[int], completions: int, duration: float, trace_sample_ratio: float
) -> dict[str, Any]:
    largest = max(sizes)
    # mean completions per enrolled filler buyer so that the largest size holds `completions`
    mean = completions / (largest * ENROLLED_SHARE)
    result: dict[str, Any] = {
        "config": {
            "sizes": sizes,
            "completions_at_largest": completions,
            "duration_s": duration,
            "connections": 32,
            "trace_sample_ratio": trace_sample_ratio,
            "mean_completions_per_enrolled_buyer": round(mean, 2),
        }
    }
    with bench_stack("learning-scale", trace_sample_ratio) as stack:
        seeder = Seeder(stack)
        _org, course = seeder.course()
        buyer = seeder.buyer_with_course(course)
        _complete_first_items(seeder, buyer, course, REAL_BUYER_COMPLETIONS)
        assert stack.endpoints is not None
        dsn = stack.endpoints.database_url.replace("postgresql+asyncpg://", "postgresql://")
        grower = Grower(dsn, uuid.UUID(course), mean)
        result["fillers"] = asyncio.run(grower.prepare())

        ceiling = hello_world_ceiling(duration)
        result["hello_world"] = ceiling
        url = f"{stack.gateway_url}/me/courses/{course}"
        learning = next(r for r in stack.replicas if r.spec.name == "learning")
        headers = {"Authorization": f"Bearer {seeder.token(buyer)}"}
        rows: list[dict[str, Any]] = []
        for size in sorted(sizes):
            print(f"growing learning's tables to {size:,} entitlements ...", file=sys.stderr)
            grown = asyncio.run(grower.grow_to(size))
            print(f"  {grown}", file=sys.stderr)
            load(url, duration=1.0, headers=headers)  # warm-up, not recorded
            measured = load_with_cpu(stack, url, duration=duration, headers=headers)
            if measured["errors"] or set(measured["statuses"]) != {"200"}:
                raise RuntimeError(f"the player did not answer 200 only: {measured}")
            if not rows:
                # once, to tell the service's own cost from the gateway's
                result["player_direct_to_learning_at_smallest"] = load_with_cpu(
                    stack, f"{learning.url}/me/courses/{course}", duration=duration, headers=headers
                )
            rows.append(
                {
                    "size": size,
                    "entitlements": grown["entitlements"],
                    "enrollments": grown["enrollments"],
                    "completions": grown["completions"],
                    "generation": grown,
                    **measured,
                    "ratio_to_hello": round(measured["rps"] / ceiling["rps"], 3),
                }
            )
        base = rows[0]["p99_ms"]
        for row in rows:
            row["p99_vs_smallest"] = round(row["p99_ms"] / base, 3)
            row["p99_within_20pct"] = row["p99_ms"] <= base * (1 + FLAT)
            row["goal_ratio_met"] = row["ratio_to_hello"] >= GOAL_RATIO
            row["goal_p99_met"] = row["p99_ms"] <= GOAL_P99_MS
        result["sizes"] = rows
        result["p99_flat_within_20pct"] = all(r["p99_within_20pct"] for r in rows)
        print(_fmt_table(rows, ceiling["rps"]), file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--completions", type=int, default=10_000_000)
    parser.add_argument("--duration", type=float, default=8.0)
    add_trace_option(parser)
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if not sizes or sizes[0] < 2:
        parser.error("--sizes: entitlement counts >= 2, comma-separated")
    record(
        "learning_scale",
        run(sizes, args.completions, args.duration, args.trace_sample_ratio),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
