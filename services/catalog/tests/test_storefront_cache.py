"""The storefront's in-process cache: hits skip the database, and every write, wherever it comes
from, is seen (at once for this process's writes, on the trigger's NOTIFY for anyone else's);
without its LISTEN connection the cache steps aside."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coursemesh.catalog.adapters.storefront import STOREFRONT_SQL
from coursemesh.catalog.adapters.storefront_cache import STOREFRONT_CHANNEL, StorefrontCache
from coursemesh.catalog.app.ports import StorefrontListing
from coursemesh.catalog.app.views import StorefrontPage
from coursemesh.catalog.bootstrap import runtime
from coursemesh.catalog.main import SUBSCRIPTIONS, create_app
from coursemesh.catalog.service import SERVICE
from coursemesh.catalog.testing import Api, problem
from coursemesh.chassis.db import Database, asyncpg_dsn
from coursemesh.chassis.testing import TestIdentity, deliver, service_settings, wait_for

from .conftest import InApp
from .test_storefront import plan_event

# --- against the running app ----------------------------------------------------------------


@pytest.fixture
async def client(
    database_url: str, nats_url: str, identity: TestIdentity
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An HTTP-only process (no relay, no consumers): nothing commits behind the test's back,
    and the cache must work without the workers."""
    settings = service_settings(
        SERVICE,
        database_url=database_url,
        nats_url=nats_url,
        identity=identity,
        run_workers=False,
        catch_up=False,
    )
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the test's database, outside the app."""
    conn = await asyncpg.connect(
        asyncpg_dsn(database_url), server_settings={"search_path": SERVICE.schema}
    )
    yield conn
    await conn.close()


@pytest.fixture
async def cache(api: Api) -> StorefrontCache:
    """The app's cache, once its LISTEN connection is up (it answers nothing before)."""
    storefront = runtime(api.client.app).storefront_cache

    async def listening() -> bool:
        return storefront.enabled

    await wait_for(listening, timeout=10, message="storefront cache listening")
    return storefront


@pytest.fixture
def storefront_queries(
    client: AsyncTestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> list[uuid.UUID]:
    """Every storefront query the app sends to PostgreSQL (one per read of its store), by the
    course id it asks for."""
    store = runtime(client.app).storefront_store
    query = store.listing
    seen: list[uuid.UUID] = []

    async def record(course_id: uuid.UUID) -> StorefrontListing | None:
        seen.append(course_id)
        return await query(course_id)

    monkeypatch.setattr(store, "listing", record)
    return seen


async def settled(cache: StorefrontCache, admin: asyncpg.Connection) -> None:
    """Wait until the cache has heard every commit made so far (the notifications of the setup's
    writes would otherwise arrive at any moment and empty it)."""
    token = uuid.uuid4().hex
    await admin.execute("SELECT pg_notify($1, $2)", STOREFRONT_CHANNEL, token)

    async def heard() -> bool:
        return cache.last_notification == token

    await wait_for(heard, timeout=10, message="the cache heard the barrier")


async def on_sale(api: Api, db: Database, cache: StorefrontCache, admin: Any) -> tuple[str, str]:
    org, course, _ = await api.published_course()
    await deliver(db, SUBSCRIPTIONS, plan_event(course, org, cents=4900))
    await settled(cache, admin)
    return org, course


async def get(api: Api, course: str, **headers: str) -> Any:
    return await api.request("GET", f"/public/courses/{course}", None, headers=headers)


async def test_a_repeated_get_is_answered_from_memory(
    api: Api,
    db: Database,
    cache: StorefrontCache,
    admin: asyncpg.Connection,
    storefront_queries: list[uuid.UUID],
) -> None:
    _, course = await on_sale(api, db, cache, admin)
    first = await get(api, course)
    assert first.status_code == 200
    assert len(storefront_queries) == 1
    assert cache.get(uuid.UUID(course)) == StorefrontPage(first.headers["etag"], first.content)
    second = await get(api, course)
    assert (second.status_code, second.content) == (200, first.content)
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["cache-control"] == "public, max-age=30"
    not_modified = await get(api, course, **{"If-None-Match": first.headers["etag"]})
    assert not_modified.status_code == 304
    assert len(storefront_queries) == 1
    # Errors are not kept: each one asks the database again.
    missing = str(uuid.uuid4())
    for _ in range(2):
        problem(await get(api, missing), 404, "NOT_FOUND")
    assert len(storefront_queries) == 3
    assert len(cache) == 1


async def test_this_process_reads_its_own_writes_on_the_next_get(
    api: Api,
    db: Database,
    app_db: Database,
    in_app: InApp,
    cache: StorefrontCache,
    admin: asyncpg.Connection,
) -> None:
    org, course = await on_sale(api, db, cache, admin)
    assert (await get(api, course)).json()["name"] == "30-day reset"
    assert uuid.UUID(course) in cache

    # A commit that touches no storefront table sends no NOTIFY: only the in-process commit
    # listener can have emptied the cache, and it did so before commit() returned.
    async def empty_commit() -> bool:
        async with app_db.unit_of_work():
            pass
        return uuid.UUID(course) in cache

    assert in_app(empty_commit) is False

    await get(api, course)
    r = await api.request(
        "PATCH", f"/organizations/{org}/courses/{course}", json={"name": "Renamed"}
    )
    assert r.status_code == 200, r.text
    assert (await get(api, course)).json()["name"] == "Renamed"

    # What the plan projection consumer does when it runs in this process.
    in_app(deliver, app_db, SUBSCRIPTIONS, plan_event(course, org, cents=5900, version=2))
    assert (await get(api, course)).json()["price"]["cents"] == 5900

    r = await api.request("DELETE", f"/organizations/{org}/courses/{course}")
    assert r.status_code == 200, r.text
    problem(await get(api, course), 404, "COURSE_NOT_AVAILABLE")


async def test_a_request_carrying_a_consistency_token_reads_past_the_cache(
    api: Api, db: Database, cache: StorefrontCache, admin: asyncpg.Connection
) -> None:
    org, course = await on_sale(api, db, cache, admin)
    renamed = await api.request(
        "PATCH", f"/organizations/{org}/courses/{course}", json={"name": "Renamed"}
    )
    token = renamed.headers["consistency-token"]
    assert (await get(api, course)).json()["name"] == "Renamed"
    # What a replica whose NOTIFY has not arrived yet would hold: an older page.
    stale = StorefrontPage('"stale"', b'{"name": "30-day reset"}')
    assert cache.put(uuid.UUID(course), stale, cache.generation)
    assert (await get(api, course)).content == stale.body  # served from memory
    fresh = await get(api, course, **{"Consistency-Token": token})
    assert fresh.status_code == 200
    assert fresh.json()["name"] == "Renamed"
    assert fresh.headers["etag"] != stale.etag


async def test_a_write_by_another_process_reaches_the_cache_through_notify(
    api: Api, db: Database, cache: StorefrontCache, admin: asyncpg.Connection
) -> None:
    _, course = await on_sale(api, db, cache, admin)
    assert (await get(api, course)).json()["name"] == "30-day reset"
    assert uuid.UUID(course) in cache
    # Plain SQL on another connection: another replica, a migration or psql, no app code.
    await admin.execute("UPDATE programs SET name = 'Renamed elsewhere' WHERE id = $1", course)

    async def renamed() -> bool:
        return bool((await get(api, course)).json()["name"] == "Renamed elsewhere")

    await wait_for(renamed, timeout=10, message="the other process's rename is served")


def storefront_tables() -> set[str]:
    return set(re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]+)", str(STOREFRONT_SQL)))


async def test_every_table_the_storefront_reads_notifies_on_every_kind_of_write(
    api: Api, db: Database, cache: StorefrontCache, admin: asyncpg.Connection
) -> None:
    tables = storefront_tables()
    assert {"programs", "plan_projection", "workouts"} <= tables
    rows = await admin.fetch(
        "SELECT c.relname, t.tgtype FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " WHERE t.tgname = 'storefront_changed'"
    )
    # tgtype bits: INSERT 4, DELETE 8, UPDATE 16, TRUNCATE 32; no ROW (1) nor BEFORE (2) bit.
    assert {r["relname"]: r["tgtype"] for r in rows} == dict.fromkeys(tables, 4 | 8 | 16 | 32)

    _, course = await on_sale(api, db, cache, admin)
    course_id = uuid.UUID(course)

    async def emptied() -> bool:
        return course_id not in cache

    for table in sorted(tables):
        await get(api, course)
        assert course_id in cache
        # Changes no row: a statement-level trigger fires all the same.
        await admin.execute(f"DELETE FROM {table} WHERE false")
        await wait_for(emptied, timeout=10, message=f"a write to {table} empties the cache")

    await get(api, course)
    await admin.execute("TRUNCATE plan_projection")

    async def gone() -> bool:
        return bool((await get(api, course)).status_code == 404)

    await wait_for(gone, timeout=10, message="TRUNCATE is seen")


async def listener_pid(admin: asyncpg.Connection) -> int | None:
    pid: int | None = await admin.fetchval(
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name LIKE '%:storefront-cache'"
    )
    return pid


async def test_without_its_listen_connection_the_cache_is_emptied_and_bypassed(
    api: Api,
    db: Database,
    cache: StorefrontCache,
    admin: asyncpg.Connection,
    storefront_queries: list[uuid.UUID],
    postgres_url: str,
) -> None:
    _, course = await on_sale(api, db, cache, admin)
    await get(api, course)
    assert len(cache) == 1
    old_pid = await listener_pid(admin)
    assert old_pid is not None
    connections = cache.connections
    database = await admin.fetchval("SELECT current_database()")
    server = await asyncpg.connect(asyncpg_dsn(postgres_url))  # a database may not lock itself
    # Keeps the listener from reconnecting while we look; the app goes on reading through the
    # connections already in its pool.
    await server.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", old_pid)

        async def deaf() -> bool:
            return not cache.enabled

        await wait_for(deaf, timeout=10, message="the cache notices the lost connection")
        assert len(cache) == 0
        for expected_queries in (2, 3):
            assert (await get(api, course)).status_code == 200
            assert len(storefront_queries) == expected_queries
            assert len(cache) == 0
    finally:
        await server.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')
        await server.close()

    async def listening() -> bool:
        return cache.enabled

    await wait_for(listening, timeout=15, message="the listener reconnects")
    assert cache.connections == connections + 1
    assert await listener_pid(admin) not in (None, old_pid)
    await get(api, course)
    await get(api, course)
    assert len(storefront_queries) == 4
    assert len(cache) == 1
