"""TEMPORARY micro-benchmark of the player GET (deleted before hand-off)."""
from __future__ import annotations

import os
import statistics
import time
import uuid
from typing import Any

from coursemesh.contracts import examples
from coursemesh.contracts.types import CurriculumDay, CurriculumItem

from .conftest import BUYER


async def test_bench_player(database_url: str, nats_url: str, world: Any, identity: Any, clock: Any) -> None:
    from coursemesh.chassis.testing import service_settings
    from coursemesh.learning.main import create_app
    from coursemesh.learning.service import SERVICE
    from litestar.testing import AsyncTestClient
    settings = service_settings(SERVICE, database_url=database_url, nats_url=nats_url,
        identity=identity, run_workers=False, catch_up=False)
    app = create_app(settings, now=clock)
    async with app.lifespan():
        await _bench(app, world, identity)


async def _bench(app: Any, world: Any, identity: Any) -> None:
    days = []
    for d in range(90):
        if d % 7 == 6:
            days.append(CurriculumDay(day_offset=d, is_rest=True, items=[]))
            continue
        days.append(CurriculumDay(day_offset=d, is_rest=False, items=[
            CurriculumItem(item_id=uuid.uuid4(), workout_id=w, position=i)
            for i, w in enumerate((examples.WORKOUT_A, examples.WORKOUT_B))]))
    await world.course(days=days)
    await world.entitle()
    headers = identity.headers(BUYER)
    path = f"/me/courses/{examples.COURSE}"
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    variants = {
        "plain": (b"", raw_headers),
        "query": (b"tz=Europe/Berlin", raw_headers),
        "header": (b"", [*raw_headers, (b"x-timezone", b"Asia/Tokyo")]),
    }
    out = []
    for name, (qs, hs) in variants.items():
        async def once() -> None:
            sent: list[Any] = []
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                     "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                     "root_path": "", "query_string": qs, "headers": hs,
                     "client": ("127.0.0.1", 1), "server": ("t", 80)}
            async def receive() -> Any:
                return {"type": "http.request", "body": b"", "more_body": False}
            async def send(m: Any) -> None:
                sent.append(m)
            await app(scope, receive, send)
            assert sent[0]["status"] == 200, sent
        for _ in range(300):
            await once()
        runs = []
        for _ in range(7):
            n = 1000
            t0 = time.process_time()
            for _ in range(n):
                await once()
            runs.append((time.process_time() - t0) / n * 1e6)
        out.append(f"{name}: median {statistics.median(runs):.1f} us  min {min(runs):.1f} us")
    with open(os.environ.get("LBENCH_OUT", "/tmp/lbench/out.txt"), "a") as f:
        f.write(os.environ.get("LBENCH_TAG", "?") + " " + " | ".join(out) + "\n")
    print(out)
