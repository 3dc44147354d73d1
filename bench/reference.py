"""Reference apps: each hot path's kind of work done by a bare Litestar app, nothing of ours on
top, so that a hot path's figures can be read against the limit of the same work on the same
machine, server, gateway and PostgreSQL, measured in the same run.

- ``GET /public/ref/hello``: hello-world (the storefront's reference: it answers from a cache);
- ``GET /public/ref/documents/{id}``: one primary-key select via asyncpg, the row's JSON body
  returned as it is stored (the player's and the handshake's reference: one round trip behind
  the gateway; the benchmark stores the player's own response body there);
- ``POST /public/ref/orders``: one row and one outbox row in a transaction, then NOTIFY (the
  free checkout's write);
- ``python -m bench.reference consume``: a consumer in another process that, woken by that
  NOTIFY, claims the outbox rows and projects them into another table, set-based (with it
  running, ``POST /public/ref/orders`` is the free checkout's whole reference: the write and
  the projection of its event elsewhere).

Paths are under ``/public/`` so that the suite's own Caddyfile routes them (to the catalog's
upstreams) with the same matchers, headers and limits as a real request. The app is served by
the same ASGI server command as the services (``bench.servers``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar, Response, get, post

SCHEMA = "bench_reference"
CHANNEL = "bench_reference_outbox"
DSN_VARIABLE = "REFERENCE_DATABASE_URL"
#: What a service's pool holds by default (``db_pool_size``).
POOL_SIZE = 10

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.documents (id uuid PRIMARY KEY, body text NOT NULL);
CREATE TABLE IF NOT EXISTS {SCHEMA}.orders (
    id uuid PRIMARY KEY, buyer text NOT NULL, created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.outbox (
    seq bigserial PRIMARY KEY, id uuid NOT NULL, subject text NOT NULL, payload jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.projection (
    order_id uuid PRIMARY KEY, buyer text NOT NULL, projected_at timestamptz NOT NULL DEFAULT now()
);
"""

_SELECT_DOCUMENT = f"SELECT body FROM {SCHEMA}.documents WHERE id = $1"
_INSERT_ORDER = f"INSERT INTO {SCHEMA}.orders (id, buyer) VALUES ($1, $2)"
_INSERT_OUTBOX = f"""
INSERT INTO {SCHEMA}.outbox (id, subject, payload)
VALUES (
    $1::uuid,
    'reference.order.placed.v1',
    jsonb_build_object('orderId', $1::uuid, 'buyer', $2::text)
)
"""
_NOTIFY = f"NOTIFY {CHANNEL}"
#: Claim a run of outbox rows and project them, in one statement.
_PROJECT = f"""
WITH claimed AS (
    DELETE FROM {SCHEMA}.outbox
    WHERE seq IN (SELECT seq FROM {SCHEMA}.outbox ORDER BY seq LIMIT 500 FOR UPDATE SKIP LOCKED)
    RETURNING payload
)
INSERT INTO {SCHEMA}.projection (order_id, buyer)
SELECT (payload->>'orderId')::uuid, payload->>'buyer' FROM claimed
ON CONFLICT (order_id) DO NOTHING
"""


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy ``postgresql+asyncpg://`` URL as the DSN asyncpg itself takes."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def prepare(dsn: str, document: bytes) -> uuid.UUID:
    """Create the reference tables (emptied) and store ``document``; returns its id."""
    conn = await asyncpg.connect(asyncpg_dsn(dsn))
    try:
        await conn.execute(DDL)
        tables = ", ".join(f"{SCHEMA}.{t}" for t in ("documents", "orders", "outbox", "projection"))
        await conn.execute(f"TRUNCATE {tables}")
        document_id = uuid.uuid4()
        await conn.execute(
            f"INSERT INTO {SCHEMA}.documents (id, body) VALUES ($1, $2)",
            document_id,
            document.decode(),
        )
        return document_id
    finally:
        await conn.close()


async def count_projected(dsn: str) -> tuple[int, int]:
    """(orders written, orders projected) so far."""
    conn = await asyncpg.connect(asyncpg_dsn(dsn))
    try:
        orders = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.orders")
        projected = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.projection")
        return int(orders), int(projected)
    finally:
        await conn.close()


def create_app() -> Litestar:
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(
            asyncpg_dsn(os.environ[DSN_VARIABLE]), min_size=POOL_SIZE, max_size=POOL_SIZE
        )
        try:
            yield
        finally:
            await pool.close()

    @get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @get("/public/ref/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    @get("/public/ref/documents/{document_id:uuid}")
    async def document(document_id: uuid.UUID) -> Response[bytes]:
        assert pool is not None
        body = await pool.fetchval(_SELECT_DOCUMENT, document_id)
        if body is None:
            return Response(b'{"status":404}', status_code=404, media_type="application/json")
        return Response(body.encode(), media_type="application/json")

    @post("/public/ref/orders")
    async def order(data: dict[str, Any]) -> dict[str, str]:
        assert pool is not None
        order_id, buyer = uuid.uuid4(), f"buyer_{uuid.uuid4().hex}"
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(_INSERT_ORDER, order_id, buyer)
            await conn.execute(_INSERT_OUTBOX, order_id, buyer)
            await conn.execute(_NOTIFY)
        return {"id": str(order_id)}

    return Litestar(route_handlers=[live, hello, document, order], lifespan=[lifespan])


async def consume(dsn: str) -> None:
    """Project the outbox until SIGTERM or SIGINT: drain at each NOTIFY (and once a second,
    for a notification sent while a drain ran)."""
    conn = await asyncpg.connect(asyncpg_dsn(dsn))
    wake, stop = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await conn.add_listener(CHANNEL, lambda *_: wake.set())
    print("consumer ready", flush=True)
    try:
        while not stop.is_set():
            wake.clear()
            while (await conn.execute(_PROJECT)) != "INSERT 0 0":
                pass
            waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())}
            _done, pending = await asyncio.wait(
                waiters, timeout=1.0, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
    finally:
        await conn.close()


if __name__ == "__main__":
    if sys.argv[1:] != ["consume"]:
        raise SystemExit(
            "usage: python -m bench.reference consume  (DSN in $REFERENCE_DATABASE_URL)"
        )
    asyncio.run(consume(os.environ[DSN_VARIABLE]))
