"""Fixtures for commerce: a migrated database per test, the app under test (in-process client
or a real HTTP server), and helpers that feed catalog's events through the real inbox."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import (
    TestIdentity,
    deliver,
    migrated_database,
    service_settings,
)
from coursemesh.commerce.events.catalog import SUBSCRIPTIONS
from coursemesh.commerce.main import create_app
from coursemesh.commerce.service import SERVICE
from coursemesh.commerce.settings import Settings
from coursemesh.contracts import Event, envelope
from coursemesh.contracts.catalog import (
    CourseArchived,
    CourseDetailsChanged,
    CoursePublished,
    MembershipChanged,
    OrganizationUpserted,
    membership_aggregate_id,
)
from coursemesh.contracts.examples import EXAMPLE_TIME

TRAINER = "user_trainer"
OWNER = "user_owner"
MEMBER = "user_member"
BUYER = "user_buyer"
BUYER_EMAIL = "buyer@example.com"
#: The sandbox provider's key in these tests (a fresh one per run: no key is known in advance).
SANDBOX_WEBHOOK_KEY = "test-sandbox-" + secrets.token_hex(16)


@pytest.fixture
async def database_url(postgres_url: str) -> str:
    return await migrated_database(postgres_url, SERVICE)


@pytest.fixture
def identity(tmp_path: Path) -> TestIdentity:
    return TestIdentity(tmp_path / "identity")


@pytest.fixture
def make_settings(
    database_url: str, nats_url: str, identity: TestIdentity
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return service_settings(
            SERVICE,
            database_url=database_url,
            nats_url=nats_url,
            identity=identity,
            **{"sandbox_webhook_key": SANDBOX_WEBHOOK_KEY, **overrides},
        )

    return make


@dataclass
class Catalog:
    """Feeds catalog's events to commerce, as catalog would, with versions it keeps."""

    db: Database
    versions: dict[str, int]

    async def send(self, payload: Event, aggregate_id: str | uuid.UUID) -> None:
        key = str(aggregate_id)
        self.versions[key] = self.versions.get(key, 0) + 1
        env = envelope(payload, aggregate_id=aggregate_id, aggregate_version=self.versions[key])
        await deliver(self.db, SUBSCRIPTIONS, env)

    async def organization(
        self, name: str = "Peak Form Studio", currency: str = "USD"
    ) -> uuid.UUID:
        org = uuid.uuid4()
        await self.send(
            OrganizationUpserted(
                organization_id=org,
                name=name,
                slug=name.lower().replace(" ", "-"),
                logo_url="https://cdn.example.com/logo.png",
                currency=currency,
            ),
            org,
        )
        return org

    async def member(self, org: uuid.UUID, user: str, role: Any = "trainer") -> uuid.UUID:
        membership = uuid.uuid4()
        await self.send(
            MembershipChanged(
                organization_id=org,
                user_id=user,
                membership_id=membership,
                role=role,
                is_staff=role in ("owner", "admin", "trainer"),
            ),
            membership_aggregate_id(org, user),
        )
        return membership

    async def course(
        self, org: uuid.UUID, name: str = "30-day reset", *, published: bool = True
    ) -> uuid.UUID:
        course = uuid.uuid4()
        await self.send(
            CourseDetailsChanged(
                course_id=course,
                organization_id=org,
                name=name,
                description=None,
                image_url=None,
                duration_days=30,
                preview_type="none",
                status="draft",
            ),
            course,
        )
        if published:
            await self.send(
                CoursePublished(
                    course_id=course,
                    organization_id=org,
                    published_at=EXAMPLE_TIME,
                    curriculum_version=1,
                ),
                course,
            )
        return course

    async def archive(self, org: uuid.UUID, course: uuid.UUID) -> None:
        await self.send(
            CourseArchived(course_id=course, organization_id=org, archived_at=EXAMPLE_TIME), course
        )


_PUBLISHER_COLUMNS = {("outbox", "published_at"), ("outbox", "attempts"), ("outbox", "last_error")}


@dataclass
class Harness:
    client: Any  # AsyncTestClient or httpx.AsyncClient: the same call shapes
    db: Database
    catalog: Catalog
    identity: TestIdentity
    settings: Settings
    #: the provider's side of onboarding, given the API's answer (None: the sandbox's form)
    finish_onboarding: Callable[[dict[str, Any]], Awaitable[None]] | None = None

    def auth(self, user: str, email: str | None = None) -> dict[str, str]:
        return self.identity.headers(user, email=email)

    async def onboard(self, org: uuid.UUID) -> dict[str, Any]:
        """The org's payment account, opened and onboarded by its owner through the API, as
        a seller does it: ask for the link, submit the provider's onboarding form, ask again
        (which reads the account back from the provider: enabled, without waiting for the
        provider's ``account.updated``). Returns the account as the API shows it."""
        await self.catalog.member(org, OWNER, role="owner")
        url = f"/organizations/{org}/payments/onboarding"
        started = await self.client.post(url, headers=self.auth(OWNER))
        assert started.status_code == 200, started.text
        if self.finish_onboarding is not None:
            await self.finish_onboarding(started.json())
        else:
            form = await self.client.post(
                urlsplit(started.json()["url"]).path, follow_redirects=False
            )
            assert form.status_code == 303, form.text
        again = await self.client.post(url, headers=self.auth(OWNER))
        assert again.status_code == 200, again.text
        account: dict[str, Any] = again.json()["account"]
        assert account["status"] == "enabled", account
        return account

    async def shop(self, price: int | None = 4900) -> tuple[uuid.UUID, uuid.UUID]:
        """An org with a trainer, a payment account its owner onboarded, and a published course
        priced at ``price`` (None: no plan)."""
        org = await self.catalog.organization()
        await self.catalog.member(org, TRAINER)
        await self.onboard(org)
        course = await self.catalog.course(org)
        if price is not None:
            r = await self.client.patch(
                f"/organizations/{org}/courses/{course}/price",
                json={"priceInCents": price},
                headers=self.auth(TRAINER),
            )
            assert r.status_code == 200, r.text
        return org, course

    async def checkout(self, course: uuid.UUID, user: str = BUYER, **headers: str) -> Any:
        return await self.client.post(
            f"/courses/{course}/checkout",
            headers={**self.auth(user, email=f"{user}@example.com"), **headers},
        )

    async def rows(self, table: sa.Table, *where: Any) -> list[dict[str, Any]]:
        async with self.db.engine.connect() as conn:
            result = await conn.execute(sa.select(table).where(*where))
            return [dict(r) for r in result.mappings()]

    async def payment_deliveries(self) -> list[dict[str, Any]]:
        """The sandbox's webhook deliveries of payments (not the ``account.updated`` each
        onboarding queues)."""
        from coursemesh.commerce.adapters.tables import sandbox_deliveries

        rows = await self.rows(sandbox_deliveries)
        return [r for r in rows if '"type":"account.updated"' not in r["body"]]

    async def snapshot(self) -> dict[str, list[str]]:
        """Every row of every table in commerce's schema (as text, sorted): equal snapshots
        mean that a request in between wrote nothing. Left out: the outbox's delivery
        bookkeeping, which the publisher updates after an earlier request has answered."""
        async with self.db.engine.connect() as conn:
            columns = (
                await conn.execute(
                    sa.text(
                        "SELECT c.table_name, c.column_name FROM information_schema.columns c"
                        " JOIN information_schema.tables t USING (table_schema, table_name)"
                        " WHERE c.table_schema = :schema AND t.table_type = 'BASE TABLE'"
                        " ORDER BY c.table_name, c.ordinal_position"
                    ),
                    {"schema": SERVICE.schema},
                )
            ).all()
            selected: dict[str, list[str]] = {}
            for table, column in columns:
                if (table, column) not in _PUBLISHER_COLUMNS:
                    selected.setdefault(table, []).append(f'"{column}"')
            tables: dict[str, list[str]] = {}
            for table, names in selected.items():
                rows = await conn.execute(
                    sa.text(f'SELECT {", ".join(names)} FROM "{SERVICE.schema}"."{table}"')
                )
                tables[table] = sorted(repr(tuple(row)) for row in rows)
        return tables

    async def count(self, table: sa.Table) -> int:
        async with self.db.engine.connect() as conn:
            return int(
                (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
            )


@pytest.fixture
async def harness(
    make_settings: Callable[..., Settings], identity: TestIdentity
) -> AsyncIterator[Harness]:
    """The app in-process (no webhook sender/receipt sender races: workers off)."""
    settings = make_settings(run_workers=False, catch_up=False)
    app = create_app(settings)
    # The test client runs the app on its own event loop: the test keeps its own engine.
    db = Database(settings.database_url, SERVICE.schema)
    async with AsyncTestClient(app) as client:
        yield Harness(client, db, Catalog(db, {}), identity, settings)
    await db.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _CrashLog(logging.Handler):
    """The background tasks that crashed (``chassis.app.supervise`` logs each crash)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "crashed" in record.getMessage():
            self.records.append(f"{record.getMessage()}: {record.exc_info and record.exc_info[1]}")


@pytest.fixture
async def live(
    make_settings: Callable[..., Settings], identity: TestIdentity, smtp_server: Any
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """Start the app on a real port with its workers (sandbox sender, receipts, sweeper).
    At the end, no worker may have crashed meanwhile (a crashing worker is restarted, so its
    work may still get done: only its log says so)."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None], httpx.AsyncClient]] = []
    databases: list[Database] = []
    crashes = _CrashLog()
    logging.getLogger("coursemesh.app").addHandler(crashes)

    async def start(**overrides: Any) -> Harness:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        settings = make_settings(
            public_base_url=base,
            smtp_host=smtp_server.host,
            smtp_port=smtp_server.port,
            **overrides,
        )
        app: Litestar = create_app(settings)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        task = asyncio.create_task(server.serve())
        client = httpx.AsyncClient(base_url=base, timeout=10.0)
        servers.append((server, task, client))

        async def started() -> bool:
            return server.started

        from coursemesh.chassis.testing import wait_for

        await wait_for(started, timeout=20, message="uvicorn started")
        db = Database(settings.database_url, SERVICE.schema)
        databases.append(db)
        return Harness(client, db, Catalog(db, {}), identity, settings)

    yield start
    for server, task, client in servers:
        await client.aclose()
        server.should_exit = True
        await task
    for db in databases:
        await db.dispose()
    logging.getLogger("coursemesh.app").removeHandler(crashes)
    assert crashes.records == [], crashes.records
