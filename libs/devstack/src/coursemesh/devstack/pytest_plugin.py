"""pytest fixtures for real infrastructure, registered for every run via
``-p coursemesh.devstack.pytest_plugin``.

Importing this module starts nothing and imports nothing heavy: each session fixture starts
its server lazily, the first time a test asks for it, and stops it at session end.

Environment:
    COURSEMESH_TEST_DATABASE_URL    use this PostgreSQL instead of an embedded one
    COURSEMESH_TEST_NATS_URL        use this NATS (JetStream enabled) instead of an embedded one
    COURSEMESH_TEST_S3_ENDPOINT     use this S3 (with _ACCESS_KEY, _SECRET_KEY, _REGION)
    COURSEMESH_TEST_CONTAINERS=1    start PostgreSQL/NATS/S3 with testcontainers when a Docker
                                    engine is reachable (extra ``coursemesh-devstack[containers]``)
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from coursemesh.devstack.infra import S3Config
    from coursemesh.devstack.mailbox import Mailbox


@dataclass(frozen=True)
class SmtpServer:
    """The session's SMTP server and a reader of what it received."""

    host: str
    port: int
    mailbox: Mailbox


def _use_containers() -> bool:
    if os.environ.get("COURSEMESH_TEST_CONTAINERS", "") not in {"1", "true", "yes"}:
        return False
    try:
        docker: Any = importlib.import_module("docker")
        docker.from_env().ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def devstack_exit_stack() -> Iterator[ExitStack]:
    """Closes every server the session fixtures started, in reverse order."""
    with ExitStack() as stack:
        yield stack


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory, devstack_exit_stack: ExitStack) -> str:
    """SQLAlchemy URL (``postgresql+asyncpg://``) of a PostgreSQL server's ``postgres`` db."""
    from coursemesh.devstack.stack import asyncpg_url

    external = os.environ.get("COURSEMESH_TEST_DATABASE_URL")
    if external:
        return asyncpg_url(external)
    if _use_containers():
        from testcontainers.postgres import PostgresContainer

        container = devstack_exit_stack.enter_context(PostgresContainer("postgres:16-alpine"))
        return asyncpg_url(container.get_connection_url())
    from coursemesh.devstack.infra import EmbeddedPostgres

    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres") / "data")
    devstack_exit_stack.enter_context(server)
    return server.sqlalchemy_url


@pytest.fixture
def database_factory(postgres_url: str) -> Iterator[Callable[[], str]]:
    """Call it to get the URL of a brand-new, empty database (dropped after the test)."""
    from coursemesh.devstack.infra import create_database, drop_database

    created: list[str] = []

    def _create() -> str:
        name = f"test_{uuid.uuid4().hex[:12]}"
        url = create_database(postgres_url, name, exist_ok=False)
        created.append(name)
        return url

    yield _create
    for name in created:
        try:
            drop_database(postgres_url, name)
        except Exception as exc:  # a test may keep connections open; the server goes anyway
            print(f"devstack: could not drop database {name}: {exc}")


@pytest.fixture
def fresh_database_url(database_factory: Callable[[], str]) -> str:
    """URL of a brand-new, empty database for this test only."""
    return database_factory()


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory, devstack_exit_stack: ExitStack) -> str:
    """``nats://`` URL of a NATS server with JetStream."""
    external = os.environ.get("COURSEMESH_TEST_NATS_URL")
    if external:
        return external
    if _use_containers():
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs

        container: Any = DockerContainer("nats:2.10-alpine").with_command("-js")
        container = devstack_exit_stack.enter_context(container.with_exposed_ports(4222))
        wait_for_logs(container, "Server is ready")
        host, port = container.get_container_host_ip(), container.get_exposed_port(4222)
        return f"nats://{host}:{port}"
    from coursemesh.devstack.infra import EmbeddedNats

    server = EmbeddedNats(tmp_path_factory.mktemp("nats") / "store")
    devstack_exit_stack.enter_context(server)
    return server.url


@pytest.fixture(scope="session")
def s3_config(tmp_path_factory: pytest.TempPathFactory, devstack_exit_stack: ExitStack) -> S3Config:
    """Endpoint, access key, secret key and region of an S3-compatible store
    (``.client()`` gives a boto3 client, ``.ensure_bucket(name)`` creates a bucket)."""
    from coursemesh.devstack.infra import S3Config

    endpoint = os.environ.get("COURSEMESH_TEST_S3_ENDPOINT")
    if endpoint:
        return S3Config(
            endpoint,
            os.environ["COURSEMESH_TEST_S3_ACCESS_KEY"],
            os.environ["COURSEMESH_TEST_S3_SECRET_KEY"],
            os.environ.get("COURSEMESH_TEST_S3_REGION", "us-east-1"),
        )
    if _use_containers():
        from testcontainers.minio import MinioContainer

        minio: Any = devstack_exit_stack.enter_context(MinioContainer())
        cfg = minio.get_config()
        return S3Config(f"http://{cfg['endpoint']}", cfg["access_key"], cfg["secret_key"])
    from coursemesh.devstack.infra import EmbeddedS3

    server = EmbeddedS3(tmp_path_factory.mktemp("s3") / "data")
    devstack_exit_stack.enter_context(server)
    return server.config


@pytest.fixture(scope="session")
def smtp_server(
    tmp_path_factory: pytest.TempPathFactory, devstack_exit_stack: ExitStack
) -> SmtpServer:
    """An SMTP server writing every message into a directory, and its :class:`Mailbox`.
    Always embedded: only then can the test read what was sent."""
    from coursemesh.devstack.infra import EmbeddedSmtp

    server = EmbeddedSmtp(tmp_path_factory.mktemp("mail") / "inbox")
    devstack_exit_stack.enter_context(server)
    return SmtpServer(server.host, server.port, server.mailbox)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium (installed on first use, as root): the browser for pages a person
    sees. See :mod:`coursemesh.devstack.browser`."""
    from coursemesh.devstack.browser import chromium_path

    return str(chromium_path())


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Any]:
    """A headless Chromium driven by Playwright, for the whole session (a test opens its own
    context: ``await browser.new_context()``)."""
    from playwright.async_api import async_playwright

    from coursemesh.devstack.browser import CHROMIUM_ARGS

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()
