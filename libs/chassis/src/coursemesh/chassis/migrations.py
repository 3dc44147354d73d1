"""Alembic per service: scripts live in the service package, the version table in its schema."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from coursemesh.chassis.service import ServiceDefinition

VERSION_TABLE = "alembic_version"


def alembic_config(definition: ServiceDefinition[Any], database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(definition.migrations_dir))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["schema"] = definition.schema
    cfg.attributes["metadata"] = definition.metadata
    return cfg


def head_revision(definition: ServiceDefinition[Any]) -> str | None:
    script = ScriptDirectory.from_config(alembic_config(definition, "postgresql://"))
    return script.get_current_head()


async def current_revision(conn: AsyncConnection, schema: str) -> str | None:
    exists = await conn.scalar(
        sa.text("SELECT to_regclass(:t)"), {"t": f"{schema}.{VERSION_TABLE}"}
    )
    if exists is None:
        return None
    result = await conn.scalar(sa.text(f'SELECT version_num FROM "{schema}".{VERSION_TABLE}'))
    return str(result) if result is not None else None


async def upgrade_head(definition: ServiceDefinition[Any], database_url: str) -> None:
    """Create the schema if needed and run every migration; safe to run concurrently."""
    cfg = alembic_config(definition, database_url)
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{definition.schema}"'))
            await conn.commit()
            lock_key = sa.text("SELECT pg_advisory_lock(hashtext(:k))")
            await conn.execute(lock_key, {"k": f"{definition.schema}.migrate"})
            try:
                await conn.run_sync(_upgrade, cfg)
                await conn.commit()
            finally:
                unlock = sa.text("SELECT pg_advisory_unlock(hashtext(:k))")
                await conn.execute(unlock, {"k": f"{definition.schema}.migrate"})
                await conn.commit()
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, cfg: Config) -> None:
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


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
