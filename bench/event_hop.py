"""Event hop: a commit in one service -> the projection committed in another process.

The demo producer commits counter changes (state + outbox row in one transaction) at a fixed
rate while its relay publishes them; a projector *process* consumes them through the inbox and
records, after each commit, ``now - envelope.occurred_at``. Then the backlog case: N events are
committed with no relay running, and we time how long relay + projector take to drain them.

    uv run python -m bench event_hop            # 1,000 events/s for 10 s, then a 20,000 backlog
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import ROOT, embedded_infra, record
from coursemesh.chassis.bus import Bus, ensure_streams
from coursemesh.chassis.consumer import ConsumerRunner
from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.chassis.demo.service import (
    PRODUCER,
    PROJECTOR,
    on_counter_set,
    projector_subscriptions,
    set_counter,
)
from coursemesh.chassis.demo.tables import counter_effects
from coursemesh.chassis.outbox import OutboxRelay
from coursemesh.chassis.testing import migrated_database
from coursemesh.contracts import Envelope


async def _projector(db_url: str, nats_url: str, expected: int, out: Path) -> None:
    """Run in its own process: consume until ``expected`` events, then write the latencies."""
    db = Database(db_url, PROJECTOR.schema, pool_size=4)
    bus = await Bus.connect(nats_url, "bench-projector")
    latencies: list[float] = []
    done = asyncio.Event()

    async def timed(uow: UnitOfWork, env: Envelope[Any]) -> None:
        await on_counter_set(uow, env)

        def stamp() -> None:
            latencies.append(time.time() - env.occurred_at.timestamp())
            if len(latencies) >= expected:
                done.set()

        uow.after_commit(stamp)

    (sub,) = projector_subscriptions(timed)
    runner = ConsumerRunner(consumer="bench", db=db, js=bus.js, subscription=sub, batch=256)
    await runner.provision()
    task = asyncio.create_task(runner.run())
    print("ready", flush=True)
    await done.wait()
    task.cancel()
    out.write_text(json.dumps(latencies))  # noqa: ASYNC240 -- once, at the end
    await bus.close()
    await db.dispose()


def _start_projector(db_url: str, nats_url: str, expected: int, out: Path) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "bench.event_hop", "--projector", db_url, nats_url]
    argv += [str(expected), str(out)]
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
    db_url: str, nats_url: str, rate: int, seconds: float, workdir: Path
) -> dict[str, Any]:
    total = int(rate * seconds)
    await _fresh_streams(nats_url)
    out = workdir / "hop.json"
    proc = _start_projector(db_url, nats_url, total, out)
    db = Database(db_url, PRODUCER.schema, pool_size=8)
    bus = await Bus.connect(nats_url, "bench-producer")
    relay = OutboxRelay(db, bus.js)
    relay_task = asyncio.create_task(relay.run())
    loop = asyncio.get_running_loop()
    start = loop.time()
    writers = 8
    per_writer = total // writers

    async def writer(w: int) -> None:
        for i in range(per_writer):
            due = start + (i * writers + w) / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await set_counter(db, f"c{(i * writers + w) % 100}", i)

    await asyncio.gather(*(writer(w) for w in range(writers)))
    produced_in = loop.time() - start
    await asyncio.to_thread(proc.wait, 120)
    relay_task.cancel()
    await bus.close()
    await db.dispose()
    latencies = json.loads(out.read_text())
    return {
        "target_rate": rate,
        "events": len(latencies),
        "achieved_rate": round(per_writer * writers / produced_in),
        "p50_ms": _ms(latencies, 0.50),
        "p90_ms": _ms(latencies, 0.90),
        "p99_ms": _ms(latencies, 0.99),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
    }


async def _backlog(db_url: str, nats_url: str, count: int, workdir: Path) -> dict[str, Any]:
    await _fresh_streams(nats_url)
    db = Database(db_url, PRODUCER.schema, pool_size=8)
    # Commit the backlog with no relay running, in batches for speed.
    for chunk in range(0, count, 500):
        async with db.unit_of_work() as uow:
            from coursemesh.contracts.demo import CounterSet

            for i in range(chunk, min(count, chunk + 500)):
                uow.publish(
                    CounterSet(counter_id=f"b{i % 200}", value=i),
                    aggregate_id=f"b{i % 200}",
                    aggregate_version=i // 200 + 1,
                )
    out = workdir / "backlog.json"
    proc = _start_projector(db_url, nats_url, count, out)
    bus = await Bus.connect(nats_url, "bench-producer")
    relay = OutboxRelay(db, bus.js)
    started = time.perf_counter()
    relay_task = asyncio.create_task(relay.run())
    await asyncio.to_thread(proc.wait, 300)
    drained = time.perf_counter() - started
    relay_task.cancel()
    await bus.close()
    projector_db = Database(db_url, PROJECTOR.schema)
    async with projector_db.engine.connect() as conn:
        applied = await conn.scalar(sa.select(sa.func.count()).select_from(counter_effects))
    await projector_db.dispose()
    await db.dispose()
    return {
        "events": count,
        "seconds": round(drained, 2),
        "events_per_second": round(count / drained),
        "projected_rows": applied,
    }


async def _run(rate: int, seconds: float, backlog: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-hop-") as tmp:
        workdir = Path(tmp)
        with embedded_infra(workdir) as infra:
            db_url = await migrated_database(infra.postgres_url, PRODUCER, PROJECTOR)
            hop = await _paced_hop(db_url, infra.nats_url, rate, seconds, workdir)
            db_url = await migrated_database(infra.postgres_url, PRODUCER, PROJECTOR)
            drain = await _backlog(db_url, infra.nats_url, backlog, workdir)
    return {"event_hop": hop, "backlog_drain": drain, "goal": "p50<=5ms p99<=25ms; drain>=5000/s"}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--projector":
        db_url, nats_url, expected, out = args[1:5]
        asyncio.run(_projector(db_url, nats_url, int(expected), Path(out)))
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--backlog", type=int, default=20000)
    opts = parser.parse_args(args)
    record("event_hop", asyncio.run(_run(opts.rate, opts.seconds, opts.backlog)))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
