"""Support for the integrations tests: a migrated database per test, the app with its sender
running, events applied through the real inbox + handlers, and real HTTP receivers."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity, deliver, migrated_database, service_settings
from coursemesh.contracts import Event, envelope
from coursemesh.contracts.catalog import MembershipChanged, membership_aggregate_id
from coursemesh.contracts.commerce import EntitlementChangedV2
from coursemesh.integrations.events.handlers import subscriptions
from coursemesh.integrations.main import create_app
from coursemesh.integrations.service import SERVICE

ORG = uuid.UUID("0193a000-0000-7000-8000-00000000a001")
OTHER_ORG = uuid.UUID("0193a000-0000-7000-8000-00000000a002")
OWNER = "user_owner"
OTHER_OWNER = "user_other_owner"
#: Retry delays are multiplied by this: the whole 24-hour schedule takes about 5 s.
RETRY_SCALE = 0.00002


@dataclass
class Received:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    verified: Any  # the parsed body when the signature matched a known secret, else None


@dataclass
class Receiver:
    """A real HTTP server on an ephemeral port. ``answers`` is consumed one per request (then
    204); every request is recorded with its signature verified against ``secrets``."""

    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: while not set, every request waits (``holding`` tells it has arrived)
    hold: threading.Event | None = None
    holding: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def verify(self, body: bytes, headers: dict[str, str]) -> Any:
        for secret in self.secrets:
            try:
                return Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
        return None

    def ids(self) -> list[str]:
        with self.lock:
            return [r.webhook_id for r in self.received]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if receiver.hold is not None and not receiver.hold.is_set():
                receiver.holding.set()
                receiver.hold.wait(30)  # the test kills the sender meanwhile
            with receiver.lock:
                receiver.received.append(
                    Received(headers["webhook-id"], headers, body, receiver.verify(body, headers))
                )
                status, extra = receiver.answers.pop(0) if receiver.answers else (204, {})
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def serve(r: Receiver, port: int = 0) -> None:
    """Start ``r`` listening (on ``port``, or any free one)."""
    r.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(r))
    threading.Thread(target=r.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    serve(r)
    yield r
    assert r.server is not None
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
async def database_url(postgres_url: str) -> str:
    return await migrated_database(postgres_url, SERVICE)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, SERVICE.schema)
    yield database
    await database.dispose()


class World:
    """Feeds the service the events other services would publish."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.versions: dict[str, int] = {}

    async def event(self, payload: Event, aggregate_id: Any) -> None:
        key = str(aggregate_id)
        self.versions[key] = self.versions.get(key, 0) + 1
        env = envelope(payload, aggregate_id=aggregate_id, aggregate_version=self.versions[key])
        await deliver(self.db, subscriptions(), env)

    async def staff(self, org: uuid.UUID, user_id: str) -> None:
        await self.event(
            MembershipChanged(
                organization_id=org,
                user_id=user_id,
                membership_id=uuid.uuid4(),
                role="owner",
                is_staff=True,
            ),
            membership_aggregate_id(org, user_id),
        )


@pytest.fixture
async def world(db: Database) -> World:
    w = World(db)
    await w.staff(ORG, OWNER)
    await w.staff(OTHER_ORG, OTHER_OWNER)
    return w


@pytest.fixture
def identity(tmp_path: Path) -> TestIdentity:
    return TestIdentity(tmp_path / "identity")


def settings_for(database_url: str, nats_url: str, identity: TestIdentity, **extra: Any) -> Any:
    return service_settings(
        SERVICE,
        database_url=database_url,
        nats_url=nats_url,
        identity=identity,
        catch_up=False,
        allow_loopback_endpoints=True,
        retry_scale=RETRY_SCALE,
        poll_interval_seconds=0.05,
        **extra,
    )


@pytest.fixture
async def client(
    database_url: str, nats_url: str, identity: TestIdentity, world: World
) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app with its sender running."""
    settings = settings_for(database_url, nats_url, identity)
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
async def idle_client(
    database_url: str, nats_url: str, identity: TestIdentity, world: World
) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app without its sender: only requests change the database."""
    settings = settings_for(database_url, nats_url, identity, run_workers=False)
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


def dumps(value: Any) -> str:
    return json.dumps(value)


def entitlement(status: str = "active", previous: str | None = None) -> EntitlementChangedV2:
    return EntitlementChangedV2(
        entitlement_id=uuid.uuid4(),
        user_id="user_buyer",
        course_id=uuid.uuid4(),
        organization_id=ORG,
        status=status,  # type: ignore[arg-type]
        access_revoked_at=None,
        source_payment_transaction_id=None,
        membership_id=None,
        previous_status=previous,  # type: ignore[arg-type]
        cause="free_checkout",
        reason=None,
        changed_at=datetime(2026, 12, 5, 9, 0, tzinfo=UTC),
    )
