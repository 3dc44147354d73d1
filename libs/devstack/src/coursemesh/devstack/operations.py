"""Operations on a running stack, for the ``coursemesh`` command line: the services' schema
migrations, the outboxes' backlog, the dead-letter stream and projection rebuilds. Addresses
come from the stack's ``stack.json`` (or are given)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import nats

from coursemesh.chassis.deadletter import DeadLetter, list_dead_letters, replay
from coursemesh.devstack.services import SERVICES
from coursemesh.devstack.stack import asyncpg_url, read_stack_json

if TYPE_CHECKING:
    from coursemesh.chassis.rebuild import Projection, RebuildProgress, RebuildReport

#: Each service's schema (its package's last name: ``coursemesh.customgen`` -> ``customgen``).
SCHEMAS: tuple[tuple[str, str], ...] = tuple(
    (spec.name, spec.package.rsplit(".", 1)[1]) for spec in SERVICES
)


class StackNotFound(Exception):
    """No running stack's address is known: start one (``coursemesh up``) or give the URL."""


def stack_address(data_dir: Path, key: str, given: str | None) -> str:
    """``given``, else ``key`` (``nats_url``, ``database_url``) of ``<data_dir>/stack.json``."""
    if given:
        return given
    info = read_stack_json(data_dir) or {}
    value = info.get(key)
    if not value:
        raise StackNotFound(
            f"no {key} in {data_dir / 'stack.json'}: start the stack (`make up`) or pass it"
        )
    return str(value)


@dataclass(frozen=True)
class OutboxStatus:
    service: str
    unpublished: int
    oldest_unpublished: datetime | None
    failing: int  # unpublished rows whose last attempt failed
    published: int


_OUTBOX = """
SELECT count(*) FILTER (WHERE published_at IS NULL) AS unpublished,
       min(created_at) FILTER (WHERE published_at IS NULL) AS oldest,
       count(*) FILTER (WHERE published_at IS NULL AND last_error IS NOT NULL) AS failing,
       count(*) FILTER (WHERE published_at IS NOT NULL) AS published
  FROM "{schema}".outbox
"""


async def outbox_status(database_url: str) -> list[OutboxStatus]:
    """Every service's outbox: rows not yet on the bus, the oldest of them, the failing ones."""
    url = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(url)
    try:
        statuses = []
        for service, schema in SCHEMAS:
            exists = await conn.fetchval("SELECT to_regclass($1)", f'"{schema}".outbox')
            if exists is None:
                continue  # not migrated (yet)
            row = await conn.fetchrow(_OUTBOX.format(schema=schema))
            assert row is not None
            statuses.append(
                OutboxStatus(
                    service,
                    row["unpublished"],
                    row["oldest"],
                    row["failing"],
                    row["published"],
                )
            )
        return statuses
    finally:
        await conn.close()


async def dead_letters(nats_url: str) -> list[DeadLetter]:
    nc = await nats.connect(nats_url)
    try:
        return await list_dead_letters(nc.jetstream())
    finally:
        await nc.close()


async def replay_dead_letters(nats_url: str, seqs: Sequence[int] | None) -> list[DeadLetter]:
    """Re-publish the given dead letters (None: all of them) on their original subjects."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        if seqs is None:
            seqs = [d.seq for d in await list_dead_letters(js)]
        return [await replay(js, seq) for seq in seqs]
    finally:
        await nc.close()


# --- migrations ----------------------------------------------------------------------------


class UnknownName(LookupError):
    """A service or projection name that does not exist; the message lists those that do."""


def service_names(names: Sequence[str] | None) -> list[str]:
    """``names`` checked against the stack's services (None or empty: all of them, in order)."""
    known = [spec.name for spec in SERVICES]
    if not names:
        return known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UnknownName(f"unknown service {', '.join(unknown)}; known: {', '.join(known)}")
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Migrated:
    service: str
    schema: str
    before: str | None  # the schema's revision before the run (None: never migrated)
    after: str | None
    message: str  # what the runner said (at head, or ahead of this code and compatible)
    refused: str | None = None  # why the runner refused (the schema is left as it was)


async def migrate(
    database_url: str,
    services: Sequence[str],
    on_service: Callable[[str], None] | None = None,
) -> list[Migrated]:
    """Run each service's migrations to head with the runner of ``make up`` and the pods'
    initContainer (:func:`coursemesh.chassis.migrations.upgrade_head`), reading the revision
    before and after. A refusal is reported and the next service still migrated."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from coursemesh.chassis.migrations import MigrationRefused, current_revision, upgrade_head
    from coursemesh.chassis.service import load_definition

    database_url = asyncpg_url(database_url)
    engine = create_async_engine(database_url, poolclass=sa.NullPool)

    async def revision(schema: str) -> str | None:
        async with engine.connect() as conn:
            return await current_revision(conn, schema)

    results = []
    try:
        for name in services:
            if on_service is not None:
                on_service(name)
            definition = load_definition(name)
            schema = definition.schema
            before = await revision(schema)
            try:
                verdict = await upgrade_head(definition, database_url)
            except MigrationRefused as exc:
                results.append(Migrated(name, schema, before, before, "", refused=str(exc)))
                continue
            results.append(Migrated(name, schema, before, await revision(schema), verdict.message))
    finally:
        await engine.dispose()
    return results


# --- projections ---------------------------------------------------------------------------


def projections(service: str) -> dict[str, Projection]:
    """The projections ``service`` declares rebuildable, by name."""
    from coursemesh.chassis.rebuild import load_projections

    (name,) = service_names([service])
    return load_projections(name)


def projection(service: str, name: str) -> Projection:
    declared = projections(service)
    if name not in declared:
        known = ", ".join(declared) or "none"
        raise UnknownName(f"{service} has no rebuildable projection {name!r}; it has: {known}")
    return declared[name]


async def rebuild_projection(
    database_url: str,
    nats_url: str,
    service: str,
    name: str,
    *,
    force: bool = False,
    progress: RebuildProgress | None = None,
) -> RebuildReport:
    """Rebuild one projection of ``service`` on the running stack
    (:func:`coursemesh.chassis.rebuild.rebuild`)."""
    from coursemesh.chassis.db import Database
    from coursemesh.chassis.rebuild import rebuild
    from coursemesh.chassis.service import load_definition

    declared = projection(service, name)
    schema = load_definition(service).schema
    db = Database(
        asyncpg_url(database_url), schema, application_name="coursemesh-rebuild", pool_size=1
    )
    try:
        nc = await nats.connect(nats_url)
        try:
            return await rebuild(db, nc.jetstream(), declared, force=force, progress=progress)
        finally:
            await nc.close()
    finally:
        await db.dispose()
