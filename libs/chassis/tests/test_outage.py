"""Losing PostgreSQL or NATS: the service answers honestly while it is gone (a prompt 503 with
``Retry-After``, readiness false), keeps taking writes while only the bus is away, shuts down
cleanly, and serves again by itself once the server is back.

Every test that stops a server runs its own (PostgreSQL on a cluster of this module, NATS per
test), so stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from litestar import Litestar, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath

from coursemesh.chassis.app import create_service_app
from coursemesh.chassis.bus import Bus
from coursemesh.chassis.consumer import Subscription
from coursemesh.chassis.db import Database, is_connection_failure
from coursemesh.chassis.demo.service import (
    PRODUCER,
    PROJECTOR,
    projector_subscriptions,
    set_counter,
)
from coursemesh.chassis.demo.tables import counters
from coursemesh.chassis.errors import PROBLEM_JSON, NotFound
from coursemesh.chassis.service import ServiceDefinition
from coursemesh.chassis.settings import ServiceSettings, SettingsError, load_settings
from coursemesh.chassis.testing import TestIdentity, migrated_database, service_settings, wait_for
from coursemesh.devstack.infra import EmbeddedNats, EmbeddedPostgres

#: Far above any answer that does not hang, far below the 60 s a driver waits by default.
ANSWER_BOUND = 10.0

# --- the service under test ---------------------------------------------------------------


@get("/counters/{counter_id:str}")
async def read_on_driver(
    counter_id: FromPath[str], db: NamedDependency[Database]
) -> dict[str, Any]:
    """A hot read: a pooled asyncpg connection, outside any transaction."""
    async with db.reading() as conn:
        value = await conn.fetchval(
            "SELECT value FROM demo_producer.counters WHERE id = $1", counter_id
        )
    if value is None:
        raise NotFound("no such counter", code="COUNTER_NOT_FOUND")
    return {"id": counter_id, "value": value}


@get("/session/counters/{counter_id:str}")
async def read_in_session(
    counter_id: FromPath[str], db: NamedDependency[Database]
) -> dict[str, Any]:
    """A read in a unit of work, through SQLAlchemy."""
    async with db.unit_of_work() as uow:
        value = await uow.session.scalar(
            sa.select(counters.c.value).where(counters.c.id == counter_id)
        )
    return {"id": counter_id, "value": value}


@put("/counters/{counter_id:str}/{value:int}", status_code=200)
async def write_counter(
    counter_id: FromPath[str], value: FromPath[int], db: NamedDependency[Database]
) -> dict[str, Any]:
    """A write with its event, in a unit of work."""
    return {"version": await set_counter(db, counter_id, value)}


@post("/counters/{counter_id:str}/bump", status_code=200)
async def bump_on_driver(
    counter_id: FromPath[str], db: NamedDependency[Database]
) -> dict[str, Any]:
    """A write in a unit of work that runs on the driver alone."""
    async with db.driver_unit_of_work() as uow:
        driver = await uow.driver()
        status = await driver.execute(
            "UPDATE demo_producer.counters SET value = value + 1 WHERE id = $1", counter_id
        )
    return {"status": status}


@get("/bad-sql")
async def bad_sql(db: NamedDependency[Database]) -> None:
    """A statement the database refuses: a bug, not an outage."""
    async with db.reading() as conn:
        await conn.fetchval("SELECT no_such_column FROM demo_producer.counters")


@get("/projected/{counter_id:str}")
async def projected(counter_id: FromPath[str]) -> None:
    """A refusal that may rest on another service's events: answered after catching up."""
    raise NotFound("not projected yet", code="COUNTER_NOT_FOUND")


ROUTES = [read_on_driver, read_in_session, write_counter, bump_on_driver, bad_sql]


class Records(logging.Handler):
    """Every record at WARNING or above, from any logger."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def named(self, logger: str, level: int) -> list[logging.LogRecord]:
        return [r for r in self.records if r.name == logger and r.levelno == level]

    def errors(self) -> list[logging.LogRecord]:
        return [r for r in self.records if r.levelno >= logging.ERROR]


@dataclass
class Served:
    """A running app: a client for its requests, and how its shutdown went."""

    app: Litestar
    client: httpx.AsyncClient
    logs: Records
    shutdown: dict[str, Any] = field(default_factory=dict)

    async def timed(self, method: str, path: str) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        async with asyncio.timeout(ANSWER_BOUND):
            response = await self.client.request(method, path)
        return response, time.monotonic() - started

    async def ready(self) -> httpx.Response:
        async with asyncio.timeout(ANSWER_BOUND):
            return await self.client.get("/health/ready")


@asynccontextmanager
async def serving(app: Litestar) -> AsyncIterator[Served]:
    """Run ``app``'s lifespan on this loop (requests share it, so tests reach the app's state)
    and record the message that ends it: ``lifespan.shutdown.complete`` or ``.failed``."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(message: Any) -> None:
        await outbox.put(message)

    scope: Any = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    lifespan = asyncio.create_task(app(scope, inbox.get, send))  # type: ignore[arg-type]
    await inbox.put({"type": "lifespan.startup"})
    async with asyncio.timeout(30):
        started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started
    logs = Records()
    logging.getLogger().addHandler(logs)  # after start-up, which replaces the root's handlers
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    served = Served(app, httpx.AsyncClient(transport=transport, base_url="http://svc"), logs)
    try:
        yield served
    finally:
        logging.getLogger().removeHandler(logs)
        await served.client.aclose()
        await inbox.put({"type": "lifespan.shutdown"})
        async with asyncio.timeout(30):
            served.shutdown = await outbox.get()
        await asyncio.gather(lifespan, return_exceptions=True)


def _app(
    definition: ServiceDefinition[ServiceSettings],
    *,
    database_url: str,
    nats_url: str,
    identity: TestIdentity,
    subscriptions: list[Subscription] | None = None,
    **overrides: Any,
) -> Litestar:
    settings = service_settings(
        definition,
        database_url=database_url,
        nats_url=nats_url,
        identity=identity,
        **overrides,
    )
    return create_service_app(
        definition,
        route_handlers=[*ROUTES, projected],
        subscriptions=subscriptions or (),
        settings=settings,
    )


# --- servers of this module ---------------------------------------------------------------


@pytest.fixture(scope="module")
def own_postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("outage-pg") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_postgres(own_postgres_server: EmbeddedPostgres) -> EmbeddedPostgres:
    """The module's server, running (a test that stopped it and failed may have left it so)."""
    if not own_postgres_server.running:
        own_postgres_server.respawn().wait_ready()
    return own_postgres_server


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats" / "store")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def identity(tmp_path: Path) -> TestIdentity:
    return TestIdentity(tmp_path / "keys")


async def _stop(server: EmbeddedPostgres | EmbeddedNats) -> None:
    """Stop the server off the loop, so the service notices it as it would in production."""
    await asyncio.to_thread(server.stop)


async def _restart(server: EmbeddedPostgres | EmbeddedNats) -> None:
    await asyncio.to_thread(lambda: server.respawn().wait_ready())


def _problem_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.text
    body: dict[str, Any] = response.json()
    return body


# --- NATS lost ----------------------------------------------------------------------------


async def test_bus_close_after_nats_is_lost_returns_without_error(own_nats: EmbeddedNats) -> None:
    bus = await Bus.connect(own_nats.url, "outage-test")
    await _stop(own_nats)
    await wait_for(lambda: _true(not bus.connected), timeout=5, message="bus disconnected")

    started = time.monotonic()
    async with asyncio.timeout(ANSWER_BOUND):
        await bus.close()

    assert bus.nc.is_closed
    assert time.monotonic() - started < ANSWER_BOUND


async def test_bus_close_while_connected_drains(own_nats: EmbeddedNats) -> None:
    bus = await Bus.connect(own_nats.url, "outage-test")
    received: list[bytes] = []

    async def on_message(msg: Any) -> None:
        received.append(msg.data)

    await bus.nc.subscribe("outage.drain", cb=on_message)
    await bus.nc.publish("outage.drain", b"in flight")
    async with asyncio.timeout(ANSWER_BOUND):
        await bus.close()

    assert bus.nc.is_closed
    assert received == [b"in flight"]  # drained: delivered before the connection closed


async def test_a_service_whose_nats_is_lost_shuts_down_cleanly(
    postgres_url: str, own_nats: EmbeddedNats, identity: TestIdentity
) -> None:
    url = await migrated_database(postgres_url, PRODUCER)
    app = _app(PRODUCER, database_url=url, nats_url=own_nats.url, identity=identity)
    async with serving(app) as served:
        assert (await served.client.put("/counters/c1/1")).status_code == 200
        await _stop(own_nats)
        await wait_for(
            lambda: _true(not served.app.state.ctx.bus.connected), timeout=5, message="bus lost"
        )

    assert served.shutdown["type"] == "lifespan.shutdown.complete", served.shutdown


async def test_while_nats_is_lost_writes_succeed_and_readiness_follows_the_bus(
    postgres_url: str, own_nats: EmbeddedNats, identity: TestIdentity
) -> None:
    url = await migrated_database(postgres_url, PRODUCER)
    app = _app(
        PRODUCER,
        database_url=url,
        nats_url=own_nats.url,
        identity=identity,
        consistency_timeout_seconds=1.0,
    )
    async with serving(app) as served:
        assert (await served.ready()).status_code == 200
        await _stop(own_nats)
        lost = time.monotonic()

        async def not_ready() -> bool:
            response = await served.ready()
            return response.status_code == 503 and response.json()["checks"] == {
                "database": "ok",
                "nats": "disconnected",
            }

        await wait_for(not_ready, timeout=2, message="readiness false without NATS")
        unready_after = time.monotonic() - lost

        written, took = await served.timed("PUT", "/counters/offline/7")
        assert written.status_code == 200, written.text
        # it waited for the bus as long as a read waits to catch up, then succeeded anyway
        assert 1.0 <= took < 3.0
        assert "consistency-token" not in written.headers
        db: Database = served.app.state.db
        assert await _unpublished(db) == 1  # left to the relay

        await _restart(own_nats)
        back = time.monotonic()
        await wait_for(
            lambda: _status_is(served, "/health/ready", 200), timeout=10, message="ready again"
        )
        ready_after = time.monotonic() - back
        await wait_for(lambda: _true_async(_unpublished(db), 0), timeout=10, message="relayed")

    assert unready_after < 2
    assert ready_after < 10
    print(
        f"\nNATS lost: not ready after {unready_after * 1000:.0f} ms, a write took "
        f"{took * 1000:.0f} ms; back: ready after {ready_after * 1000:.0f} ms"
    )
    assert served.shutdown["type"] == "lifespan.shutdown.complete", served.shutdown


async def test_a_write_while_nats_is_briefly_lost_answers_once_its_events_are_in_the_stream(
    postgres_url: str, own_nats: EmbeddedNats, identity: TestIdentity
) -> None:
    url = await migrated_database(postgres_url, PRODUCER)
    app = _app(
        PRODUCER,
        database_url=url,
        nats_url=own_nats.url,
        identity=identity,
        consistency_timeout_seconds=30.0,
    )
    async with serving(app) as served:
        await _stop(own_nats)
        await wait_for(
            lambda: _status_is(served, "/health/ready", 503), timeout=5, message="bus lost"
        )
        write = asyncio.create_task(served.timed("PUT", "/counters/briefly/3"))
        db: Database = served.app.state.db
        await wait_for(lambda: _true_async(_unpublished(db), 1), timeout=5, message="committed")
        assert not write.done()  # held while its events cannot reach the stream
        await _restart(own_nats)
        written, _ = await write
        assert written.status_code == 200, written.text
        # the answer carries where its events landed: any service can catch up to it
        assert written.headers.get("consistency-token"), written.headers


async def test_a_negative_answer_while_nats_is_lost_is_503_catching_up_within_the_timeout(
    postgres_url: str, own_nats: EmbeddedNats, identity: TestIdentity
) -> None:
    url = await migrated_database(postgres_url, PROJECTOR)
    timeout = 1.0
    app = _app(
        PROJECTOR,
        database_url=url,
        nats_url=own_nats.url,
        identity=identity,
        subscriptions=projector_subscriptions(),
        consistency_timeout_seconds=timeout,
    )
    async with serving(app) as served:
        caught_up, _ = await served.timed("GET", "/projected/c1")
        assert caught_up.status_code == 404  # the bus answers: a plain "no"
        await _stop(own_nats)
        await wait_for(
            lambda: _true(not served.app.state.ctx.bus.connected), timeout=5, message="bus lost"
        )

        response, took = await served.timed("GET", "/projected/c1")

    assert response.status_code == 503
    assert _problem_of(response)["code"] == "CATCHING_UP"
    assert response.headers["retry-after"] == "1"
    assert took < timeout + 2.0
    print(f"\nCATCHING_UP without NATS after {took * 1000:.0f} ms (timeout {timeout:g} s)")
    assert served.shutdown["type"] == "lifespan.shutdown.complete", served.shutdown


# --- PostgreSQL lost ----------------------------------------------------------------------


async def _producer_database(server: EmbeddedPostgres) -> str:
    return await migrated_database(server.sqlalchemy_url, PRODUCER)


async def test_requests_while_postgres_is_down_are_503_and_served_again_once_it_is_back(
    own_postgres: EmbeddedPostgres, own_nats: EmbeddedNats, identity: TestIdentity
) -> None:
    url = await _producer_database(own_postgres)
    app = _app(PRODUCER, database_url=url, nats_url=own_nats.url, identity=identity)
    requests = [
        ("GET", "/counters/c1"),
        ("GET", "/session/counters/c1"),
        ("PUT", "/counters/c1/2"),
        ("POST", "/counters/c1/bump"),
    ]
    async with serving(app) as served:
        assert (await served.client.put("/counters/c1/1")).status_code == 200
        for method, path in requests:  # every kind of pooled connection is in use
            assert (await served.client.request(method, path)).status_code == 200

        await _stop(own_postgres)
        answers = [await served.timed(method, path) for method, path in requests]
        readiness, readiness_took = await served.timed("GET", "/health/ready")
        warnings = served.logs.named("coursemesh.errors", logging.WARNING)
        errors = served.logs.errors()

        await _restart(own_postgres)
        back = time.monotonic()
        await wait_for(
            lambda: _status_is(served, "/health/ready", 200), timeout=10, message="ready again"
        )
        recovered_after = time.monotonic() - back
        again = [(await served.client.request(m, p)).status_code for m, p in requests]

    for response, took in answers:
        assert response.status_code == 503, response.text
        problem = _problem_of(response)
        assert problem["code"] == "DATABASE_UNAVAILABLE"
        assert problem["status"] == 503
        assert int(response.headers["retry-after"]) >= 1
        assert took < ANSWER_BOUND
    assert readiness.status_code == 503
    assert readiness.json()["checks"]["database"].startswith("unreachable")
    assert readiness_took < ANSWER_BOUND
    # One line per refused request, as a warning; no stack trace at error level.
    assert len(warnings) == len(requests)
    assert all(r.exc_info is None for r in warnings)
    assert errors == [], [r.getMessage() for r in errors]
    assert again == [200] * len(requests)  # with no step taken by anyone
    assert recovered_after < 10
    assert served.shutdown["type"] == "lifespan.shutdown.complete", served.shutdown
    print(
        "\nPostgreSQL down: 503 after "
        + ", ".join(
            f"{p} {t * 1000:.1f} ms" for (_, p), (_, t) in zip(requests, answers, strict=True)
        )
        + f"; readiness 503 after {readiness_took * 1000:.1f} ms; ready again "
        f"{recovered_after * 1000:.0f} ms after the server was"
    )


async def test_pooled_connections_closed_by_a_restart_are_replaced_without_a_failed_request(
    own_postgres: EmbeddedPostgres, own_nats: EmbeddedNats, identity: TestIdentity
) -> None:
    pool_size = 4
    url = await _producer_database(own_postgres)
    app = _app(
        PRODUCER, database_url=url, nats_url=own_nats.url, identity=identity, db_pool_size=pool_size
    )
    async with serving(app) as served:
        assert (await served.client.put("/counters/c1/1")).status_code == 200
        db: Database = served.app.state.db
        await _fill_pool(db, pool_size)

        await _stop(own_postgres)  # nothing asks the database while it is away
        await _restart(own_postgres)
        statuses = await asyncio.gather(
            *(served.client.get("/counters/c1") for _ in range(3 * pool_size))
        )
        session = await served.client.get("/session/counters/c1")

    assert [r.status_code for r in statuses] == [200] * (3 * pool_size)
    assert session.status_code == 200


async def test_under_load_every_failure_is_a_prompt_503_and_none_once_postgres_is_back(
    own_postgres: EmbeddedPostgres, own_nats: EmbeddedNats, identity: TestIdentity
) -> None:
    url = await _producer_database(own_postgres)
    app = _app(PRODUCER, database_url=url, nats_url=own_nats.url, identity=identity)
    outcomes: list[tuple[float, float, int]] = []  # (began, answered, status)
    stop = asyncio.Event()

    async def client_loop(served: Served, path: str, method: str) -> None:
        while not stop.is_set():
            began = time.monotonic()
            response = await served.client.request(method, path)
            outcomes.append((began, time.monotonic(), response.status_code))
            await asyncio.sleep(0)  # let the other clients in

    async with serving(app) as served:
        assert (await served.client.put("/counters/c1/1")).status_code == 200
        loops = [
            asyncio.create_task(client_loop(served, path, method))
            for path, method in [("/counters/c1", "GET")] * 6 + [("/counters/c1/1", "PUT")] * 2
        ]
        await wait_for(lambda: _true(len(outcomes) > 50), message="load running")
        stopping = time.monotonic()
        await _stop(own_postgres)
        down = time.monotonic()
        await wait_for(lambda: _true(any(b > down for b, _, _ in outcomes)), message="a request")
        await _restart(own_postgres)
        up = time.monotonic()
        await wait_for(
            lambda: _true(sum(1 for b, _, c in outcomes if b > up and c == 200) > 50),
            timeout=10,
            message="served again",
        )
        stop.set()
        await asyncio.gather(*loops)
        errors = served.logs.errors()

    assert errors == [], [r.getMessage() for r in errors]
    failed = [(b, a, c) for b, a, c in outcomes if c != 200]
    assert {c for _, _, c in failed} <= {503}, failed
    # A request that began once the server was back found working connections.
    assert [o for o in failed if o[0] > up] == []
    # A request that began while it was away was refused at once.
    refused = sorted(a - b for b, a, c in failed if b > down)
    assert refused
    assert refused[-1] < ANSWER_BOUND
    recovered = min(a for b, a, c in outcomes if b > up and c == 200) - up
    print(
        f"\noutage under load: {len(outcomes)} requests, {len(failed)} answered 503: "
        f"{sum(1 for o in failed if o[0] < stopping)} in flight when the stop began, "
        f"{sum(1 for o in failed if stopping <= o[0] <= down)} begun during the stop, "
        f"{len(refused)} begun while it was down (median {refused[len(refused) // 2] * 1000:.1f} "
        f"ms, slowest {refused[-1] * 1000:.1f} ms); after the server was ready: "
        f"{sum(1 for o in failed if o[0] > up)} failed, first 200 after {recovered * 1000:.1f} ms"
    )


async def test_a_database_that_accepts_but_never_answers_is_503_after_the_connect_timeout(
    own_nats: EmbeddedNats, identity: TestIdentity
) -> None:
    async with _silent_server() as port:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
        app = _app(
            PRODUCER,
            database_url=url,
            nats_url=own_nats.url,
            identity=identity,
            db_connect_timeout_seconds=0.5,
        )
        async with serving(app) as served:
            response, took = await served.timed("GET", "/counters/c1")
            readiness, readiness_took = await served.timed("GET", "/health/ready")

    assert response.status_code == 503
    assert _problem_of(response)["code"] == "DATABASE_UNAVAILABLE"
    assert "retry-after" in response.headers
    assert took < ANSWER_BOUND
    assert readiness.status_code == 503
    assert readiness_took < ANSWER_BOUND


async def test_a_request_that_waits_past_the_pool_timeout_is_503(
    own_postgres: EmbeddedPostgres, own_nats: EmbeddedNats, identity: TestIdentity
) -> None:
    url = await _producer_database(own_postgres)
    app = _app(
        PRODUCER,
        database_url=url,
        nats_url=own_nats.url,
        identity=identity,
        db_pool_size=1,
        db_pool_timeout_seconds=0.5,
    )
    async with serving(app) as served:
        db: Database = served.app.state.db
        async with db.reading():  # the pool's only connection, held
            response, took = await served.timed("GET", "/counters/c1")
        after = await served.client.get("/session/counters/c1")

    assert response.status_code == 503
    assert _problem_of(response)["code"] == "DATABASE_UNAVAILABLE"
    assert "retry-after" in response.headers
    assert took < ANSWER_BOUND
    assert after.status_code == 200


async def test_the_database_timeouts_come_from_the_settings(
    own_postgres: EmbeddedPostgres, own_nats: EmbeddedNats, identity: TestIdentity
) -> None:
    url = await _producer_database(own_postgres)
    app = _app(
        PRODUCER,
        database_url=url,
        nats_url=own_nats.url,
        identity=identity,
        db_connect_timeout_seconds=1.5,
        db_pool_timeout_seconds=0.25,
    )
    async with serving(app) as served:
        db: Database = served.app.state.db

    assert (db.connect_timeout, db.pool_timeout) == (1.5, 0.25)
    assert db.engine.pool.timeout() == 0.25


async def test_a_statement_the_database_refuses_is_still_a_500(
    own_postgres: EmbeddedPostgres, own_nats: EmbeddedNats, identity: TestIdentity
) -> None:
    url = await _producer_database(own_postgres)
    app = _app(PRODUCER, database_url=url, nats_url=own_nats.url, identity=identity)
    async with serving(app) as served:
        response = await served.client.get("/bad-sql")
        errors = served.logs.errors()
        after = await served.client.get("/session/counters/c1")

    assert response.status_code == 500
    assert _problem_of(response)["code"] == "INTERNAL_ERROR"
    assert "retry-after" not in response.headers
    assert len(errors) == 1
    assert errors[0].exc_info is not None  # a bug keeps its stack trace
    assert after.status_code == 200  # and the connection it ran on still serves


def test_the_database_timeouts_are_settings_that_must_be_positive() -> None:
    env = {"X_DATABASE_URL": "postgresql+asyncpg://db", "X_NATS_URL": "nats://n", "X_JWKS_URL": "u"}
    defaults = load_settings(ServiceSettings, "X_", env)
    assert (defaults.db_connect_timeout_seconds, defaults.db_pool_timeout_seconds) == (3.0, 5.0)
    tuned = load_settings(
        ServiceSettings,
        "X_",
        {**env, "X_DB_CONNECT_TIMEOUT_SECONDS": "1.5", "X_DB_POOL_TIMEOUT_SECONDS": "0.5"},
    )
    assert (tuned.db_connect_timeout_seconds, tuned.db_pool_timeout_seconds) == (1.5, 0.5)
    with pytest.raises(SettingsError, match="DB_POOL_TIMEOUT_SECONDS"):
        load_settings(ServiceSettings, "X_", {**env, "X_DB_POOL_TIMEOUT_SECONDS": "0"})


# --- which failures are the database's absence ---------------------------------------------


async def test_the_database_timeouts_bound_a_connect_and_a_pool_wait(
    own_postgres: EmbeddedPostgres,
) -> None:
    async with _silent_server() as port:
        silent = Database(
            f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres",
            "public",
            connect_timeout=0.3,
        )
        started = time.monotonic()
        with pytest.raises(Exception) as connect_failed:
            async with silent.reading():
                pass
        assert time.monotonic() - started < ANSWER_BOUND
        await silent.dispose()
    assert is_connection_failure(connect_failed.value)

    db = Database(own_postgres.sqlalchemy_url, "public", pool_size=1, pool_timeout=0.2)
    try:
        async with db.reading():
            started = time.monotonic()
            with pytest.raises(sa.exc.TimeoutError) as waited:
                async with db.reading():
                    pass
            assert time.monotonic() - started < ANSWER_BOUND
        assert is_connection_failure(waited.value)
    finally:
        await db.dispose()


async def test_a_refused_connection_and_a_dropped_one_are_connection_failures(
    own_postgres: EmbeddedPostgres,
) -> None:
    refused_port = own_postgres.port
    await _stop(own_postgres)
    try:
        with pytest.raises(OSError) as refused:
            await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{refused_port}/postgres")
    finally:
        await _restart(own_postgres)
    assert is_connection_failure(refused.value)

    conn = await asyncpg.connect(own_postgres.url)
    try:
        admin = await asyncpg.connect(own_postgres.url)
        await admin.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
        await admin.close()
        with pytest.raises(Exception) as dropped:
            await conn.fetchval("SELECT 1")
    finally:
        conn.terminate()
    assert is_connection_failure(dropped.value)


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (asyncpg.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.AdminShutdownError("terminating connection due to administrator command"), True),
        (asyncpg.ConnectionDoesNotExistError("connection was closed in the middle"), True),
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), True),
        (asyncpg.InterfaceError("connection is closed"), True),
        (asyncpg.InternalClientError("cannot switch to state 12; another operation"), True),
        (sa.exc.TimeoutError("QueuePool limit of size 10 overflow 0 reached"), True),
        (asyncpg.UniqueViolationError("duplicate key value"), False),
        (asyncpg.UndefinedColumnError("column does not exist"), False),
        (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), False),
        (
            asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
            False,
        ),
        (OSError("No space left on device"), False),  # not raised by the driver
        (TimeoutError(), False),  # e.g. a call to another service
        (ValueError("a bug"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_connection_failures_are_told_from_other_errors(
    error: BaseException, unavailable: bool
) -> None:
    assert is_connection_failure(error) is unavailable


def test_a_connection_failure_wrapped_by_sqlalchemy_is_still_one() -> None:
    shutdown = asyncpg.AdminShutdownError("terminating connection due to administrator command")
    assert is_connection_failure(sa.exc.OperationalError("SELECT 1", {}, shutdown))
    translated = sa.exc.InterfaceError("SELECT 1", {}, Exception("connection is closed"))
    translated.__cause__ = asyncpg.InterfaceError("connection is closed")
    assert is_connection_failure(translated)
    invalidated = sa.exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    assert is_connection_failure(invalidated)
    assert is_connection_failure(ExceptionGroup("dependencies", [ValueError(), invalidated]))
    refused = sa.exc.ProgrammingError("SELECT x", {}, asyncpg.UndefinedColumnError("no x"))
    assert not is_connection_failure(refused)


# --- helpers ------------------------------------------------------------------------------


async def _true(value: bool) -> bool:
    return value


async def _true_async(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def _status_is(served: Served, path: str, status: int) -> bool:
    return (await served.client.get(path)).status_code == status


async def _unpublished(db: Database) -> int:
    outbox = db.spine.outbox
    async with db.engine.connect() as conn:
        query = sa.select(sa.func.count()).where(outbox.c.published_at.is_(None))
        return int((await conn.execute(query)).scalar_one())


async def _fill_pool(db: Database, size: int) -> None:
    """Open ``size`` pooled connections at once and hand them back."""
    release = asyncio.Event()
    held = 0

    async def hold() -> None:
        nonlocal held
        async with db.reading() as conn:
            await conn.fetchval("SELECT 1")
            held += 1
            await release.wait()

    tasks = [asyncio.create_task(hold()) for _ in range(size)]
    await wait_for(lambda: _true(held == size), message="pool filled")
    release.set()
    await asyncio.gather(*tasks)


@asynccontextmanager
async def _silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never says a word (a database host whose
    PostgreSQL hangs, or a half-open network path)."""
    accepted: list[asyncio.StreamWriter] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
