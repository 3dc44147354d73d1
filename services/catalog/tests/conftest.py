"""Fixtures for catalog tests: a migrated database per test and the real app on real NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

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
