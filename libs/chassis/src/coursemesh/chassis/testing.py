"""Helpers for tests of every service: waiting on a condition with a deadline (never a sleep)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa

from coursemesh.chassis.consumer import ConsumerRunner, Subscription
from coursemesh.chassis.db import Database
from coursemesh.chassis.service import ServiceDefinition
from coursemesh.chassis.settings import ServiceSettings
from coursemesh.contracts import Envelope, decode

S = TypeVar("S", bound=ServiceSettings)


async def wait_for(
    predicate: Callable[[], Awaitable[bool]],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
) -> None:
    """Poll an async condition until it holds; raise AssertionError at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await predicate():
            return
        if loop.time() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s")
        await asyncio.sleep(interval)


# --- identities ---------------------------------------------------------------------------


class TestIdentity:
    """An RS256 key pair for tests: the public half goes to a service's settings
    (``jwt_public_key_file``), the private half mints tokens for any user."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, issuer: str = "coursemesh-test") -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.issuer = issuer
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        directory.mkdir(parents=True, exist_ok=True)
        self.public_key_file = directory / "jwt-public.pem"
        self.public_key_file.write_bytes(
            self._key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def token(
        self,
        sub: str,
        *,
        email: str | None = None,
        name: str | None = None,
        ttl: int = 600,
        **claims: Any,
    ) -> str:
        import jwt

        now = int(time.time())
        body: dict[str, Any] = {"sub": sub, "iss": self.issuer, "iat": now, "exp": now + ttl}
        if email:
            body["email"] = email
        if name:
            body["name"] = name
        body.update(claims)
        return jwt.encode(body, self._key, algorithm="RS256")

    def headers(self, sub: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, **kw)}"}


def service_settings(
    definition: ServiceDefinition[S],
    *,
    database_url: str,
    nats_url: str,
    identity: TestIdentity,
    **overrides: Any,
) -> S:
    """Settings for a service under test, with the test identity's public key."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "nats_url": nats_url,
        "jwt_public_key_file": str(identity.public_key_file),
        "jwt_issuer": identity.issuer,
        "log_format": "text",
        **overrides,
    }
    return msgspec.convert(values, type=definition.settings_type)


# --- databases ----------------------------------------------------------------------------

_templates: dict[tuple[str, str], str] = {}


async def migrated_database(server_url: str, *definitions: ServiceDefinition[Any]) -> str:
    """A brand-new database with the given services' migrations applied.

    Migrations run once per (server, services) into a template database; each call then
    clones the template, which is much faster than migrating again.
    """
    import asyncpg

    from coursemesh.chassis.db import asyncpg_dsn
    from coursemesh.chassis.migrations import upgrade_head

    key = (server_url, ",".join(sorted(d.name for d in definitions)))
    admin_dsn = asyncpg_dsn(server_url)
    template = _templates.get(key)
    if template is None:
        template = f"tpl_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{template}"')
        finally:
            await conn.close()
        template_url = _with_database(server_url, template)
        for definition in definitions:
            await upgrade_head(definition, template_url)
        _templates[key] = template
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    return _with_database(server_url, name)


async def migration_drift(database_url: str, schema: str, metadata: sa.MetaData) -> list[Any]:
    """What alembic's autogenerate finds between a migrated database and the service's table
    declarations (empty when the migrations build exactly the tables the code declares)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine

    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": lambda name, kind, _: kind != "schema" or name == schema,
                "include_object": lambda obj, name, kind, *_: name != "alembic_version",
            },
        )
        return list(compare_metadata(context, metadata))

    # A plain engine (search_path public) so that the schema is compared by name.
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(diff)
    finally:
        await engine.dispose()


def _with_database(url: str, database: str) -> str:
    return sa.engine.make_url(url).set(database=database).render_as_string(hide_password=False)


# --- events -------------------------------------------------------------------------------


async def outbox_events(db: Database, type_name: str | None = None) -> list[Envelope[Any]]:
    """The events a service has written to its outbox, oldest first, decoded."""
    outbox = db.spine.outbox
    query = sa.select(outbox.c.body).order_by(outbox.c.seq)
    if type_name is not None:
        query = query.where(outbox.c.type == type_name)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query)).scalars().all()
    return [decode(body) for body in rows]


async def deliver(
    db: Database,
    subscriptions: Sequence[Subscription],
    env: Envelope[Any],
    consumer: str = "test",
) -> None:
    """Apply one event through the real inbox + handler transaction, without a broker."""
    for sub in subscriptions:
        handler = sub.handlers.get(env.type)
        if handler is not None:
            runner = ConsumerRunner(consumer=consumer, db=db, js=None, subscription=sub)  # type: ignore[arg-type]
            await runner.apply(env, handler)
            return
    raise LookupError(f"no handler for {env.type}")
