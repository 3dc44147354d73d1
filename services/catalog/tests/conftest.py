"""Fixtures for catalog tests: a migrated database per test and the real app on real NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coursemesh.catalog.bootstrap import runtime
from coursemesh.catalog.main import create_app
from coursemesh.catalog.service import SERVICE
from coursemesh.catalog.testing import Api
from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity, migrated_database, service_settings


@pytest.fixture
async def database_url(postgres_url: str) -> str:
    return await migrated_database(postgres_url, SERVICE)


@pytest.fixture
def identity(tmp_path: Path) -> TestIdentity:
    return TestIdentity(tmp_path / "identity")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, SERVICE.schema)
    yield database
    await database.dispose()


@pytest.fixture
async def client(
    database_url: str, nats_url: str, identity: TestIdentity
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    settings = service_settings(
        SERVICE, database_url=database_url, nats_url=nats_url, identity=identity
    )
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def api(client: AsyncTestClient[Litestar], identity: TestIdentity) -> Api:
    return Api(client, identity)


@pytest.fixture
def app_db(client: AsyncTestClient[Litestar]) -> Database:
    """The running app's own Database: writes through it are this process's writes (its commit
    listeners run), whereas the ``db`` fixture stands for another process. Use it through
    ``in_app``: it belongs to the app's event loop."""
    return runtime(client.app).database


InApp = Callable[..., Any]


@pytest.fixture
def in_app(client: AsyncTestClient[Litestar]) -> InApp:
    """Run an async function on the app's event loop (the test client serves the app from a
    thread of its own) and return its result, as the app's own code would run it."""

    def run(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return client.blocking_portal.call(fn, *args)

    return run
