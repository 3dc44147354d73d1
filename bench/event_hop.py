"""Event hop: a commit in one service -> the projection committed in another process.

The demo producer commits counter changes (state + outbox row in one transaction) at a fixed
rate while its relay publishes them; a projector *process* consumes them through the inbox and
records, after each commit, ``now - envelope.occurred_at``. Then the backlog case: N events are
committed with no relay running, and we time how long relay + projector take to drain them.

The load generator is not the system under test. By default (``--producer driver``) each writer
commits the counter row, the outbox row and the NOTIFY as one statement on its own connection
and then signals the relay in-process, as a unit of work does after its commit: what the relay
and the projector see is the same, at a fraction of the CPU, so the offered rate is really
reached on a small machine. ``--producer uow`` commits through ``set_counter`` (the service's
unit of work) instead.

    uv run python -m bench event_hop            # 1,000 events/s for 10 s, then a 20,000 backlog
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import uvloop

from bench.common import ROOT, embedded_infra, record
from coursemesh.chassis.bus import Bus, ensure_streams
from coursemesh.chassis.consumer import AnyHandler, Batched, ConsumerRunner
from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.chassis.demo.service import (
    PRODUCER,
    PROJECTOR,
    on_counter_set,
    on_counter_sets,
    projector_subscriptions,
    set_counter,
)
from coursemesh.chassis.demo.tables import counter_effects
from coursemesh.chassis.outbox import OutboxRelay
from coursemesh.chassis.testing import migrated_database
from coursemesh.chassis.transaction import Transaction
from coursemesh.contracts import Envelope, Event, encode, envelope, subject_for
from coursemesh.contracts.demo import CounterSet

COUNTERS = 100

# The rows ``set_counter`` writes, in one statement: data-modifying CTEs share its transaction,
# and the NOTIFY is delivered at its commit.
_PRODUCE = f"""
WITH counter AS (
    INSERT INTO "{PRODUCER.schema}".counters (id, value, version) VALUES ($1, $2, $3)
    ON CONFLICT (id) DO UPDATE SET value = excluded.value, version = excluded.version
), event AS (
    INSERT INTO "{PRODUCER.schema}".outbox
        (event_id, type, subject, aggregate_id, aggregate_version, body, headers)
    VALUES ($4, $5, $6, $1, $3, $7, '{{}}')
)
SELECT pg_notify($8, '')
"""


async def _projector(db_url: str, nats_url: str, expected: int, out: Path, projection: str) -> None:
    """Run in its own process: consume until ``expected`` events, then write, per event, when
    it occurred and how long after that its projection committed, and the CPU it took."""
    db = Database(db_url, PROJECTOR.schema, pool_size=4)
    bus = await Bus.connect(nats_url, "bench-projector")
    latencies: list[tuple[float, float]] = []
    done = asyncio.Event()

    def stamp_after_commit(uow: Transaction, envs: list[Envelope[Any]]) -> None:
        def stamp() -> None:
            now = time.time()
            for env in envs:
                occurred = env.occurred_at.timestamp()
                latencies.append((occurred, now - occurred))
            if len(latencies) >= expected:
                done.set()

        uow.after_commit(stamp)

    async def timed(uow: UnitOfWork, env: Envelope[Any]) -> None:
        await on_counter_set(uow, env)
        stamp_after_commit(uow, [env])

    async def timed_run(uow: Transaction, envs: Sequence[Envelope[Any]]) -> None:
        await on_counter_sets(uow, envs)
        stamp_after_commit(uow, list(envs))

    handler: AnyHandler = Batched(timed_run) if projection == "batched" else timed
    (sub,) = projector_subscriptions(handler)
    runner = ConsumerRunner(consumer="bench", db=db, js=bus.js, subscription=sub, batch=256)
    await runner.provision()
    task = asyncio.create_task(runner.run())
    gc.freeze()  # as a service does once it has started (chassis.app)
    print("ready", flush=True)
    cpu, wall = time.process_time(), time.perf_counter()
    await done.wait()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    task.cancel()
    report = {
        "latencies": latencies,
        "cores": cpu / wall,
        "cpu_ms_per_event": 1000 * cpu / expected,
    }
    out.write_text(json.dumps(report))  # noqa: ASYNC240 -- once, at the end
    await bus.close()
    await db.dispose()


def _start_projector(
    db_url: str, nats_url: str, expected: int, out: Path, projection: str
) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "bench.event_hop", "--projector", db_url, nats_url]
    argv += [str(expected), str(out), projection]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("projector did not start")
    return proc


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


async def _fresh_streams(nats_url: str) -> None:
    bus = await Bus.connect(nats_url, "bench-setup")
    for stream in ("DEMO",):
        with contextlib.suppress(Exception):
            await bus.js.delete_stream(stream)
    await ensure_streams(bus.js, {"demo"})
    await bus.close()


async def _paced_hop(
    db_url: str,
    nats_url: str,
    rate: int,
    seconds: float,
    workdir: Path,
    *,
    producer: str = "driver",
    projection: str = "batched",
    writers: int = 8,
    warmup: float = 1.0,
) -> dict[str, Any]:
    # The first ``warmup`` seconds run at the same pace but are left out of the figures: they
    # pay for first compilations and prepared statements, once per process.
    per_writer = int(rate * (warmup + seconds)) // writers
    total = per_writer * writers
    await _fresh_streams(nats_url)
    out = workdir / "hop.json"
    proc = _start_projector(db_url, nats_url, total, out, projection)
    # One connection per driver writer plus the relay's, so the relay never queues for one.
    db = Database(db_url, PRODUCER.schema, pool_size=writers + 2)
    bus = await Bus.connect(nats_url, "bench-producer")
    relay = OutboxRelay(db, bus.js)
    relay_task = asyncio.create_task(relay.run())
    gc.freeze()
    loop = asyncio.get_running_loop()
    start = loop.time()
    measured_from = time.time() + warmup
    cpu_start = time.process_time()
    late = 0

    async def pace(n: int) -> None:
        nonlocal late
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            late += 1

    async def uow_writer(w: int) -> None:
        for i in range(per_writer):
            n = i * writers + w
            await pace(n)
            await set_counter(db, f"c{n % COUNTERS}", i)

    async def driver_writer(w: int) -> None:
        # Each writer owns its own counters, so it knows their next versions.
        own = max(1, COUNTERS // writers)
        versions: dict[str, int] = {}
        async with db.engine.connect() as pooled:
            conn: Any = (await pooled.get_raw_connection()).driver_connection
            for i in range(per_writer):
                n = i * writers + w
                await pace(n)
                counter = f"c{(i % own) * writers + w}"
                version = versions[counter] = versions.get(counter, 0) + 1
                env: Envelope[Event] = envelope(
                    CounterSet(counter_id=counter, value=i),
                    aggregate_id=counter,
                    aggregate_version=version,
                )
                await conn.execute(
                    _PRODUCE,
                    counter,
                    i,
                    version,
                    env.id,
                    env.type,
                    subject_for(env.type),
                    encode(env),
                    db.channel,
                )
                relay.wake()  # what a unit of work's commit does in-process

    writer = driver_writer if producer == "driver" else uow_writer
    await asyncio.gather(*(writer(w) for w in range(writers)))
    produced_in = loop.time() - start
    producer_cpu = time.process_time() - cpu_start
    await asyncio.to_thread(proc.wait, 120)
    relay_task.cancel()
    await bus.close()
    await db.dispose()
    report = json.loads(out.read_text())
    latencies = [lat for occurred, lat in report["latencies"] if occurred >= measured_from]
    return {
        "producer": producer,
        "projection": projection,
        "target_rate": rate,
        "events": len(latencies),
        "achieved_rate": round(total / produced_in),
        "late_commits": late,
        "producer_process_cores": round(producer_cpu / produced_in, 2),
        "projector_process_cores": round(report["cores"], 2),
        "projector_cpu_ms_per_event": round(report["cpu_ms_per_event"], 3),
        "p50_ms": _ms(latencies, 0.50),
        "p90_ms": _ms(latencies, 0.90),
        "p99_ms": _ms(latencies, 0.99),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
    }


async def _backlog(
    db_url: str, nats_url: str, count: int, workdir: Path, projection: str
) -> dict[str, Any]:
    await _fresh_streams(nats_url)
    db = Database(db_url, PRODUCER.schema, pool_size=8)
    # Commit the backlog with no relay running, in batches for speed.
    for chunk in range(0, count, 500):
        async with db.unit_of_work() as uow:
            for i in range(chunk, min(count, chunk + 500)):
                uow.publish(
                    CounterSet(counter_id=f"b{i % 200}", value=i),
                    aggregate_id=f"b{i % 200}",
                    aggregate_version=i // 200 + 1,
                )
    out = workdir / "backlog.json"
    proc = _start_projector(db_url, nats_url, count, out, projection)
    bus = await Bus.connect(nats_url, "bench-producer")
    relay = OutboxRelay(db, bus.js)
    started_at = time.time()
    started = time.perf_counter()
    relay_task = asyncio.create_task(relay.run())
    await asyncio.to_thread(proc.wait, 300)
    drained = time.perf_counter() - started
    relay_task.cancel()
    await bus.close()
    async with db.engine.connect() as conn:
        last = await conn.scalar(
            sa.select(sa.func.extract("epoch", sa.func.max(db.spine.outbox.c.published_at)))
        )
    assert last is not None
    published_in = float(last) - started_at
    projector_db = Database(db_url, PROJECTOR.schema)
    async with projector_db.engine.connect() as conn:
        applied = await conn.scalar(sa.select(sa.func.count()).select_from(counter_effects))
    await projector_db.dispose()
    await db.dispose()
    report = json.loads(out.read_text())
    return {
        "events": count,
        "projection": projection,
        "seconds": round(drained, 2),
        "events_per_second": round(count / drained),
        "relay_events_per_second": round(count / published_in),
        "projector_cpu_ms_per_event": round(report["cpu_ms_per_event"], 3),
        "projected_rows": applied,
    }


async def _run(
    rate: int, seconds: float, backlog: int, producer: str, projection: str, warmup: float
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-hop-") as tmp:
        workdir = Path(tmp)
        with embedded_infra(workdir) as infra:
            db_url = await migrated_database(infra.postgres_url, PRODUCER, PROJECTOR)
            hop = await _paced_hop(
                db_url,
                infra.nats_url,
                rate,
                seconds,
                workdir,
                producer=producer,
                projection=projection,
                warmup=warmup,
            )
            db_url = await migrated_database(infra.postgres_url, PRODUCER, PROJECTOR)
            drain = await _backlog(db_url, infra.nats_url, backlog, workdir, projection)
    return {"event_hop": hop, "backlog_drain": drain, "goal": "p50<=5ms p99<=10ms; drain>=5000/s"}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--projector":
        db_url, nats_url, expected, out, projection = args[1:6]
        # The event loop a service's consumers run on under uvicorn (``--loop auto``: uvloop).
        uvloop.run(_projector(db_url, nats_url, int(expected), Path(out), projection))
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--backlog", type=int, default=20000)
    parser.add_argument(
        "--producer",
        choices=["driver", "uow"],
        default="driver",
        help="load generator: one driver statement per event, or the service's unit of work",
    )
    parser.add_argument(
        "--projection",
        choices=["batched", "per-event"],
        default="batched",
        help="projector handler: one set-based statement per fetched run, or one per event",
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="seconds paced first and left out of the figures"
    )
    opts = parser.parse_args(args)
    result = _run(
        opts.rate, opts.seconds, opts.backlog, opts.producer, opts.projection, opts.warmup
    )
    record("event_hop", uvloop.run(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
