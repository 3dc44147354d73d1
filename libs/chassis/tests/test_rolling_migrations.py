"""Rolling deploys over expand/contract migrations, on real PostgreSQL.

Each test writes a small service's Alembic chain into a temporary package: release 1 has
revision ``r1``; release 2 adds ``r2``, an *expand* step (a nullable column: release 1's code
keeps working) or a *contract* step (a renamed column: it does not). Release 1's code has no
file for ``r2``: what it knows of it, it reads from what the runner recorded in the database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import create_async_engine

from coursemesh.chassis.app import create_service_app
from coursemesh.chassis.migrate import main as migrate_main
from coursemesh.chassis.migrations import (
    VERSION_TABLE,
    MigrationRefused,
    RevisionRecord,
    assess_schema,
    current_revision,
    recorded_revisions,
    upgrade_head,
)
from coursemesh.chassis.service import ServiceDefinition
from coursemesh.chassis.settings import ServiceSettings
from coursemesh.chassis.testing import TestIdentity, service_settings

SCHEMA = "rolling"

R1 = f'''
from alembic import op
import sqlalchemy as sa
from coursemesh.chassis.tables import create_spine_tables

revision = "r1"
down_revision = None
branch_labels = None
depends_on = None
compatible_with_previous = True


def upgrade() -> None:
    create_spine_tables("{SCHEMA}")
    op.create_table("items", sa.Column("id", sa.Integer, primary_key=True), schema="{SCHEMA}")
'''

R2_EXPAND = f'''
from alembic import op
import sqlalchemy as sa

revision = "r2"
down_revision = "r1"
branch_labels = None
depends_on = None
compatible_with_previous = True


def upgrade() -> None:
    op.add_column("items", sa.Column("note", sa.Text, nullable=True), schema="{SCHEMA}")
'''

R2_CONTRACT = f'''
from alembic import op

revision = "r2"
down_revision = "r1"
branch_labels = None
depends_on = None
compatible_with_previous = False


def upgrade() -> None:
    op.alter_column("items", "id", new_column_name="item_id", schema="{SCHEMA}")
'''

Release = Callable[..., ServiceDefinition[ServiceSettings]]


@pytest.fixture
def release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Release:
    """``release(r1, r2, ...)``: a service definition whose migrations are these files."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(*files: str, env_prefix: str = "ROLLING_") -> ServiceDefinition[ServiceSettings]:
        package = f"rolling_{uuid.uuid4().hex[:10]}"
        versions = tmp_path / package / "versions"
        versions.mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "env.py").write_text(
            "from coursemesh.chassis.migrations import run_env\n\nrun_env()\n"
        )
        for number, text in enumerate(files, start=1):
            (versions / f"{number:04d}_step.py").write_text(text)
        return ServiceDefinition(
            name="rolling",
            package=package,
            schema=SCHEMA,
            source="rolling",
            env_prefix=env_prefix,
            settings_type=ServiceSettings,
            metadata=sa.MetaData(),
            migrations_package=package,
        )

    return make


async def _readiness(
    definition: ServiceDefinition[ServiceSettings],
    database_url: str,
    nats_url: str,
    identity: TestIdentity,
) -> tuple[int, dict[str, Any]]:
    settings = service_settings(
        definition,
        database_url=database_url,
        nats_url=nats_url,
        identity=identity,
        run_workers=False,
    )
    app = create_service_app(definition, settings=settings)
    async with AsyncTestClient(app) as client:
        response = await client.get("/health/ready")
    return response.status_code, response.json()


async def _revision(database_url: str) -> str | None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await current_revision(conn, SCHEMA)
    finally:
        await engine.dispose()


async def _recorded(database_url: str) -> dict[str, RevisionRecord] | None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await recorded_revisions(conn, SCHEMA)
    finally:
        await engine.dispose()


async def test_old_release_stays_ready_after_the_next_expand_migration(
    release: Release, fresh_database_url: str, nats_url: str, tmp_path: Path
) -> None:
    identity = TestIdentity(tmp_path / "id")
    old, new = release(R1), release(R1, R2_EXPAND)
    await upgrade_head(old, fresh_database_url)
    assert await _readiness(old, fresh_database_url, nats_url, identity) == (
        200,
        {"status": "ok", "service": "rolling", "checks": {"database": "ok", "nats": "ok"}},
    )

    # The first pod of release 2 migrates: every pod of release 1 stays ready.
    verdict = await upgrade_head(new, fresh_database_url)
    assert (verdict.ok, verdict.state) == (True, "at_head")
    assert await _revision(fresh_database_url) == "r2"
    assert await _recorded(fresh_database_url) == {
        "r1": RevisionRecord((), True),
        "r2": RevisionRecord(("r1",), True),
    }
    status, body = await _readiness(old, fresh_database_url, nats_url, identity)
    assert (status, body["checks"]["database"]) == (200, "ok")
    status, body = await _readiness(new, fresh_database_url, nats_url, identity)
    assert (status, body["checks"]["database"]) == (200, "ok")

    # A rollback to release 1: its runner leaves the newer schema alone and succeeds.
    verdict = await upgrade_head(old, fresh_database_url)
    assert (verdict.ok, verdict.state) == (True, "ahead_compatible")
    assert await _revision(fresh_database_url) == "r2"


async def test_old_release_is_not_ready_after_a_contract_migration(
    release: Release,
    fresh_database_url: str,
    nats_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    identity = TestIdentity(tmp_path / "id")
    old, new = release(R1), release(R1, R2_CONTRACT)
    await upgrade_head(old, fresh_database_url)
    await upgrade_head(new, fresh_database_url)
    assert (await _recorded(fresh_database_url) or {})["r2"] == RevisionRecord(("r1",), False)

    status, body = await _readiness(old, fresh_database_url, nats_url, identity)
    assert status == 503
    assert body["code"] == "NOT_READY"
    message = body["checks"]["database"]
    assert "ahead of head r1" in message
    assert "contract migration r2" in message
    assert "compatible_with_previous = False" in message
    assert body["checks"]["nats"] == "ok"
    status, _ = await _readiness(new, fresh_database_url, nats_url, identity)
    assert status == 200

    # The runner of release 1 refuses (so its pods never start) and changes nothing.
    with pytest.raises(MigrationRefused, match="contract migration r2"):
        await upgrade_head(old, fresh_database_url)
    assert await _revision(fresh_database_url) == "r2"
    monkeypatch.setattr("coursemesh.chassis.migrate.load_definition", lambda name: old)
    monkeypatch.setenv("ROLLING_DATABASE_URL", fresh_database_url)
    assert await asyncio.to_thread(migrate_main, ["rolling"]) == 1
    assert "migration refused: rolling: database at r2" in capsys.readouterr().err


async def test_a_database_behind_the_code_is_not_ready(
    release: Release, fresh_database_url: str, nats_url: str, tmp_path: Path
) -> None:
    identity = TestIdentity(tmp_path / "id")
    old, new = release(R1), release(R1, R2_EXPAND)
    status, body = await _readiness(new, fresh_database_url, nats_url, identity)
    assert status == 503
    assert body["checks"]["database"] == "migrations pending (no revision yet, head r2)"
    await upgrade_head(old, fresh_database_url)
    status, body = await _readiness(new, fresh_database_url, nats_url, identity)
    assert status == 503
    assert body["checks"]["database"] == "migrations pending (database at r1, head r2)"


async def test_an_unknown_revision_without_a_recorded_chain_is_not_ready(
    release: Release, fresh_database_url: str, nats_url: str, tmp_path: Path
) -> None:
    """A schema migrated by something that recorded nothing (or whose record was lost): the
    old code cannot know whether it fits, so it says so rather than guessing."""
    identity = TestIdentity(tmp_path / "id")
    old, new = release(R1), release(R1, R2_EXPAND)
    await upgrade_head(new, fresh_database_url)
    engine = create_async_engine(fresh_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"COMMENT ON TABLE {SCHEMA}.{VERSION_TABLE} IS NULL"))
    finally:
        await engine.dispose()
    status, body = await _readiness(old, fresh_database_url, nats_url, identity)
    assert status == 503
    assert body["checks"]["database"] == (
        "database at unknown revision r2 (head r1) and no recorded chain says whether this "
        "code may run on it"
    )
    with pytest.raises(MigrationRefused, match="no recorded chain"):
        await upgrade_head(old, fresh_database_url)

    # Release 2's runner records the chain again (its files are the authority): ready again.
    await upgrade_head(new, fresh_database_url)
    status, _ = await _readiness(old, fresh_database_url, nats_url, identity)
    assert status == 200


async def test_concurrent_runners_all_succeed(release: Release, fresh_database_url: str) -> None:
    """Every pod of a rollout runs the migration at once (initContainers): one migrates, the
    others wait on the advisory lock and then find nothing to do."""
    new = release(R1, R2_EXPAND)
    verdicts = await asyncio.gather(*(upgrade_head(new, fresh_database_url) for _ in range(6)))
    assert {(v.ok, v.state) for v in verdicts} == {(True, "at_head")}
    assert await _revision(fresh_database_url) == "r2"
    assert await _recorded(fresh_database_url) == {
        "r1": RevisionRecord((), True),
        "r2": RevisionRecord(("r1",), True),
    }


async def test_runner_records_revisions_migrated_before_they_were_recorded(
    release: Release, fresh_database_url: str
) -> None:
    """A database migrated by an earlier runner (nothing recorded) gets its chain recorded by
    the next run, even with nothing left to migrate."""
    new = release(R1, R2_EXPAND)
    await upgrade_head(new, fresh_database_url)
    engine = create_async_engine(fresh_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"COMMENT ON TABLE {SCHEMA}.{VERSION_TABLE} IS NULL"))
    finally:
        await engine.dispose()
    assert await _recorded(fresh_database_url) is None
    await upgrade_head(new, fresh_database_url)
    assert set(await _recorded(fresh_database_url) or {}) == {"r1", "r2"}


# --- the rule itself ----------------------------------------------------------------------


def _chain(*steps: tuple[str, str | None, bool]) -> dict[str, RevisionRecord]:
    return {rev: RevisionRecord((down,) if down else (), ok) for rev, down, ok in steps}


@pytest.mark.parametrize(
    ("db", "recorded", "state"),
    [
        ("r1", None, "at_head"),
        (
            "r3",
            _chain(("r1", None, True), ("r2", "r1", True), ("r3", "r2", True)),
            "ahead_compatible",
        ),
        ("r3", _chain(("r2", "r1", False), ("r3", "r2", True)), "ahead_incompatible"),
        ("r3", _chain(("r2", "r1", True), ("r3", "r2", False)), "ahead_incompatible"),
        ("r3", _chain(("r3", "r2", True)), "unknown"),
        ("r3", None, "unknown"),
        ("x2", _chain(("x1", None, True), ("x2", "x1", True)), "diverged"),
        ("r0", None, "pending"),
        (None, None, "pending"),
    ],
)
def test_which_schemas_a_release_may_run_on(
    db: str | None, recorded: dict[str, RevisionRecord] | None, state: str
) -> None:
    verdict = assess_schema(db, "r1", frozenset({"r0", "r1"}), recorded)
    assert verdict.state == state
    assert verdict.ok is (state in {"at_head", "ahead_compatible"})


def test_a_merge_revision_is_judged_on_every_branch() -> None:
    recorded = {
        "a": RevisionRecord(("r1",), True),
        "b": RevisionRecord(("r0",), False),
        "m": RevisionRecord(("a", "b"), True),
    }
    verdict = assess_schema("m", "r1", frozenset({"r0", "r1"}), recorded)
    assert (verdict.ok, verdict.state) == (False, "ahead_incompatible")
    recorded["b"] = RevisionRecord(("r0",), True)
    assert assess_schema("m", "r1", frozenset({"r0", "r1"}), recorded).ok
