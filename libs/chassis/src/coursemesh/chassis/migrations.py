"""Alembic per service: scripts live in the service package, the version table in its schema.

Expand/contract: every revision file declares ``compatible_with_previous`` (True for an *expand*
step the previous revision's code keeps working on: new tables, nullable columns, indexes;
False for a *contract* step: drops, renames, new constraints old writes break). The runner
records each applied revision's flag and ``down_revision`` in the database (a JSON comment on
the version table), so code that does not have a newer revision's file can still tell whether
the schema it finds is one it can run on (readiness, and the runner of a rolled-back release).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from coursemesh.chassis.service import ServiceDefinition

VERSION_TABLE = "alembic_version"
#: The module-level name every revision file sets to True (expand) or False (contract).
COMPATIBILITY_FLAG = "compatible_with_previous"
_NOTE_KEY = "coursemesh.revisions"


class MigrationRefused(RuntimeError):
    """The database is at a revision this code must not run on, or cannot judge."""


@dataclass(frozen=True)
class RevisionRecord:
    """What the database remembers of one applied revision."""

    down_revisions: tuple[str, ...]
    compatible_with_previous: bool


@dataclass(frozen=True)
class SchemaVerdict:
    """Can this code run on the schema it found? ``state`` is one of ``at_head``,
    ``ahead_compatible`` (ok), ``pending``, ``ahead_incompatible``, ``unknown``, ``diverged``."""

    ok: bool
    state: str
    message: str


def alembic_config(definition: ServiceDefinition[Any], database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(definition.migrations_dir))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["schema"] = definition.schema
    cfg.attributes["metadata"] = definition.metadata
    return cfg


def script_directory(definition: ServiceDefinition[Any]) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(definition, "postgresql://"))


def head_revision(definition: ServiceDefinition[Any]) -> str | None:
    return script_directory(definition).get_current_head()


def code_revisions(definition: ServiceDefinition[Any]) -> frozenset[str]:
    """Every revision this code has a file for (read once per migrations directory)."""
    return _code_revisions(str(definition.migrations_dir))


@functools.lru_cache(maxsize=64)
def _code_revisions(migrations_dir: str) -> frozenset[str]:
    cfg = Config()
    cfg.set_main_option("script_location", migrations_dir)
    return frozenset(s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions())


def script_record(script: Script) -> RevisionRecord:
    """A revision file's own declaration; a file without the flag counts as a contract step."""
    flag = getattr(script.module, COMPATIBILITY_FLAG, None)
    return RevisionRecord(_as_tuple(script.down_revision), flag is True)


def declared_flag(script: Script) -> bool | None:
    """The file's ``compatible_with_previous`` if it is a bool, else None (missing or wrong)."""
    flag = getattr(script.module, COMPATIBILITY_FLAG, None)
    return flag if isinstance(flag, bool) else None


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


async def current_revision(conn: AsyncConnection, schema: str) -> str | None:
    exists = await conn.scalar(
        sa.text("SELECT to_regclass(:t)"), {"t": f"{schema}.{VERSION_TABLE}"}
    )
    if exists is None:
        return None
    result = await conn.scalar(sa.text(f'SELECT version_num FROM "{schema}".{VERSION_TABLE}'))
    return str(result) if result is not None else None


async def recorded_revisions(
    conn: AsyncConnection, schema: str
) -> dict[str, RevisionRecord] | None:
    """The revisions the runner recorded in this schema, or None when nothing was recorded."""
    note = await conn.scalar(_READ_NOTE, {"t": f"{schema}.{VERSION_TABLE}"})
    return _parse_note(note)


_READ_NOTE = sa.text("SELECT obj_description(to_regclass(:t), 'pg_class')")


def _parse_note(note: str | None) -> dict[str, RevisionRecord] | None:
    if not note:
        return None
    try:
        raw = json.loads(note)[_NOTE_KEY]
        return {
            str(rev): RevisionRecord(
                _as_tuple(entry["down_revision"]), entry[COMPATIBILITY_FLAG] is True
            )
            for rev, entry in raw.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _render_note(records: Mapping[str, RevisionRecord]) -> str:
    body = {
        rev: {
            "down_revision": (
                None
                if not r.down_revisions
                else r.down_revisions[0]
                if len(r.down_revisions) == 1
                else list(r.down_revisions)
            ),
            COMPATIBILITY_FLAG: r.compatible_with_previous,
        }
        for rev, r in sorted(records.items())
    }
    return json.dumps({_NOTE_KEY: body}, sort_keys=True, separators=(",", ":"))


def record_revisions(
    connection: Connection,
    schema: str,
    add: Mapping[str, RevisionRecord],
    forget: Iterable[str] = (),
) -> None:
    """Merge revisions into (and drop revisions from) the schema's record, in the caller's
    transaction. The version table must exist."""
    note = connection.scalar(_READ_NOTE, {"t": f"{schema}.{VERSION_TABLE}"})
    records = _parse_note(note) or {}
    updated = {**records, **add}
    for rev in forget:
        updated.pop(rev, None)
    if updated == records and note:
        return
    text = _render_note(updated)
    literal = "E'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    connection.exec_driver_sql(f'COMMENT ON TABLE "{schema}".{VERSION_TABLE} IS {literal}')


def assess_schema(
    db_revision: str | None,
    head: str | None,
    known: frozenset[str],
    recorded: Mapping[str, RevisionRecord] | None,
) -> SchemaVerdict:
    """May code whose head is ``head`` (and which has files for ``known``) run on a schema at
    ``db_revision``? Yes at its head, and ahead of it when every revision after its head up to
    the database's is recorded as compatible with the previous one."""
    if db_revision == head:
        return SchemaVerdict(True, "at_head", "ok")
    if db_revision is None:
        return SchemaVerdict(False, "pending", f"migrations pending (no revision yet, head {head})")
    if db_revision in known:
        return SchemaVerdict(
            False, "pending", f"migrations pending (database at {db_revision}, head {head})"
        )
    if not recorded or db_revision not in recorded:
        return SchemaVerdict(
            False,
            "unknown",
            f"database at unknown revision {db_revision} (head {head}) and no recorded chain "
            "says whether this code may run on it",
        )
    contract: list[str] = []
    reached_head = False
    seen: set[str] = set()
    stack = [db_revision]
    while stack:
        rev = stack.pop()
        if rev in seen:
            continue
        seen.add(rev)
        if rev == head:
            reached_head = True
            continue
        if rev in known:  # an older revision of ours, reached through a merge
            continue
        record = recorded.get(rev)
        if record is None:
            return SchemaVerdict(
                False,
                "unknown",
                f"database at {db_revision} (head {head}): revision {rev} in its chain is "
                "not recorded",
            )
        if not record.compatible_with_previous:
            contract.append(rev)
        stack.extend(record.down_revisions)
    if not reached_head:
        return SchemaVerdict(
            False,
            "diverged",
            f"database at {db_revision} does not descend from this code's head {head}",
        )
    if contract:
        return SchemaVerdict(
            False,
            "ahead_incompatible",
            f"database at {db_revision} is ahead of head {head} through contract migration "
            f"{', '.join(sorted(contract))} ({COMPATIBILITY_FLAG} = False): this code no "
            "longer fits the schema",
        )
    return SchemaVerdict(
        True,
        "ahead_compatible",
        f"database at {db_revision}, ahead of head {head}; every newer revision is compatible",
    )


async def upgrade_head(definition: ServiceDefinition[Any], database_url: str) -> SchemaVerdict:
    """Create the schema if needed and run every migration; safe to run concurrently (one
    runner at a time per schema, under a PostgreSQL advisory lock) and again (nothing to do).

    A database already *ahead* of this code (a rolled-back release) is left alone when every
    newer revision is recorded as compatible; otherwise :class:`MigrationRefused` is raised.
    """
    cfg = alembic_config(definition, database_url)
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    known = frozenset(s.revision for s in script.walk_revisions())
    schema = definition.schema
    key = {"k": f"{schema}.migrate"}
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            # The lock first: concurrent CREATE SCHEMA IF NOT EXISTS can collide.
            await conn.execute(sa.text("SELECT pg_advisory_lock(hashtext(:k))"), key)
            await conn.commit()
            try:
                await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                await conn.commit()
                found = await current_revision(conn, schema)
                if found is not None and found not in known:
                    recorded = await recorded_revisions(conn, schema)
                    await conn.commit()
                    verdict = assess_schema(found, head, known, recorded)
                    if not verdict.ok:
                        raise MigrationRefused(f"{definition.name}: {verdict.message}")
                    return verdict
                await conn.run_sync(_upgrade, cfg)
                await conn.commit()
                await conn.run_sync(_record_chain, script, schema)
                await conn.commit()
                return SchemaVerdict(True, "at_head", f"at {head}")
            finally:
                # Never mask the error that got us here; a lost connection has dropped the
                # lock with the session anyway.
                with contextlib.suppress(Exception):
                    await conn.rollback()
                    await conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:k))"), key)
                    await conn.commit()
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, cfg: Config) -> None:
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


def _record_chain(connection: Connection, script: ScriptDirectory, schema: str) -> None:
    """Record every revision up to the database's (also those applied before revisions were
    recorded); the files are the authority for the revisions this code has."""
    revision = connection.scalar(sa.text(f'SELECT version_num FROM "{schema}".{VERSION_TABLE}'))
    if revision is None:
        return
    chain = script.iterate_revisions(str(revision), "base")
    record_revisions(connection, schema, {s.revision: script_record(s) for s in chain})


def _on_version_apply(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    """Record each revision in the transaction that applies it (or forget it on downgrade)."""
    schema = ctx.version_table_schema
    if schema is None or ctx.connection is None:
        return
    if step.is_upgrade:
        add = {s.revision: script_record(s) for s in step.up_revisions if isinstance(s, Script)}
        record_revisions(ctx.connection, schema, add)
    else:
        record_revisions(ctx.connection, schema, {}, forget=step.up_revision_ids)


def run_env() -> None:
    """Body of every service's ``migrations/env.py``."""
    cfg = context.config
    schema: str = cfg.attributes["schema"]
    metadata: sa.MetaData = cfg.attributes["metadata"]
    connection: Connection | None = cfg.attributes.get("connection")

    def run(conn: Connection) -> None:
        context.configure(
            connection=conn,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=False,
            transaction_per_migration=True,
            on_version_apply=_on_version_apply,
        )
        with context.begin_transaction():
            context.run_migrations()

    if connection is not None:
        run(connection)
        return

    async def run_async() -> None:
        engine = create_async_engine(cfg.get_main_option("sqlalchemy.url") or "")
        async with engine.connect() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.run_sync(run)
            await conn.commit()
        await engine.dispose()

    asyncio.run(run_async())
