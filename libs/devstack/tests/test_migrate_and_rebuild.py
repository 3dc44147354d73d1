"""``coursemesh migrate`` and ``coursemesh projection list|rebuild`` on a real PostgreSQL and a
real JetStream server, addresses given or read from a stack's ``stack.json``, and the services'
declarations of their rebuildable projections. (Synchronous tests: the commands run their own
event loop, as from a shell.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import nats
from nats.js.errors import NotFoundError
from typer.testing import CliRunner

from coursemesh.chassis.bus import ensure_streams
from coursemesh.chassis.consumer import Subscription
from coursemesh.chassis.migrations import head_revision
from coursemesh.chassis.rebuild import load_projections
from coursemesh.chassis.service import load_definition
from coursemesh.chassis.testing import migrated_database
from coursemesh.contracts import encode, envelope
from coursemesh.contracts.commerce import EntitlementChanged, EntitlementChangedV2
from coursemesh.devstack.cli import app
from coursemesh.devstack.services import SERVICES

runner = CliRunner()


def _flat(output: str) -> str:
    return " ".join(output.split())


async def _revisions(database_url: str) -> dict[str, str | None]:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        found = {}
        for spec in SERVICES:
            schema = load_definition(spec.name).schema
            exists = await conn.fetchval("SELECT to_regclass($1)", f"{schema}.alembic_version")
            found[spec.name] = (
                await conn.fetchval(f'SELECT version_num FROM "{schema}".alembic_version')
                if exists
                else None
            )
        return found
    finally:
        await conn.close()


def test_migrate_brings_every_service_to_head_and_a_second_run_changes_nothing(
    fresh_database_url: str,
) -> None:
    heads = {spec.name: head_revision(load_definition(spec.name)) for spec in SERVICES}

    first = runner.invoke(app, ["migrate", "--database-url", fresh_database_url])
    assert first.exit_code == 0, first.output
    for name, head in heads.items():
        assert f"{name}: (empty) → {head}" in _flat(first.output)
    assert asyncio.run(_revisions(fresh_database_url)) == heads

    again = runner.invoke(app, ["migrate", "--database-url", fresh_database_url])
    assert again.exit_code == 0, again.output
    for name, head in heads.items():
        assert f"{name}: at {head} (nothing to do)" in _flat(again.output)
    assert asyncio.run(_revisions(fresh_database_url)) == heads


def test_migrate_runs_only_the_services_named_and_refuses_an_unknown_one(
    fresh_database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "stack.json").write_text(json.dumps({"database_url": fresh_database_url}))
    result = runner.invoke(app, ["migrate", "learning", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    revisions = asyncio.run(_revisions(fresh_database_url))
    assert revisions["learning"] == head_revision(load_definition("learning"))
    assert revisions["catalog"] is None

    unknown = runner.invoke(app, ["migrate", "billing", "--data-dir", str(tmp_path)])
    assert unknown.exit_code == 2
    assert "unknown service billing" in _flat(unknown.output)


def test_each_declared_projection_is_fed_by_the_services_live_handlers() -> None:
    """A declaration that drifted from the consumer (another handler, a table of another
    schema) would rebuild something the service does not keep."""
    from coursemesh.catalog import main as catalog
    from coursemesh.commerce.events import catalog as commerce
    from coursemesh.customgen import main as customgen
    from coursemesh.integrations.events import handlers as integrations
    from coursemesh.learning.events import projections as learning

    live: dict[str, list[Subscription]] = {
        "catalog": catalog.SUBSCRIPTIONS,
        "commerce": commerce.SUBSCRIPTIONS,
        "learning": learning.subscriptions(),
        "custom-gen": customgen.SUBSCRIPTIONS,
        "integrations": integrations.subscriptions(),
    }
    declared = {spec.name: load_projections(spec.name) for spec in SERVICES}
    assert {s: sorted(p) for s, p in declared.items()} == {
        "catalog": ["plans"],
        "commerce": ["courses", "memberships", "organizations"],
        "learning": ["custom_courses", "entitlements", "memberships", "organizations", "workouts"],
        "custom-gen": ["memberships"],
        "integrations": ["memberships"],
    }
    for service, projections in declared.items():
        handlers = {t: h for sub in live[service] for t, h in sub.handlers.items()}
        schema = load_definition(service).schema
        for projection in projections.values():
            for event_type, handler in projection.live_handlers_by_type.items():
                assert handlers[event_type] == handler, (service, projection.name, event_type)
            assert {t.schema for t in projection.tables} == {schema}


def _entitlement(
    entitlement_id: uuid.UUID, user: str, status: str, version: int, *, v1: bool = False
) -> Any:
    """A change as commerce publishes it now (v2), or as it did before v2 existed (v1)."""
    kind = EntitlementChanged if v1 else EntitlementChangedV2
    payload = kind(
        entitlement_id=entitlement_id,
        user_id=user,
        course_id=uuid.UUID(int=7),
        organization_id=uuid.UUID(int=1),
        status=status,  # type: ignore[arg-type]
        access_revoked_at=None,
        source_payment_transaction_id=None,
        membership_id=None,
        previous_status=None,
        cause="free_checkout",
        reason=None,
        changed_at=datetime.now(UTC),
    )
    return envelope(payload, aggregate_id=entitlement_id, aggregate_version=version)


async def _commerce_history(nats_url: str) -> None:
    """A COMMERCE stream of its own: three entitlements, one of them changed twice; the
    first two changes from before v2 existed (v1 only)."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    with contextlib.suppress(NotFoundError):
        await js.delete_stream("COMMERCE")
    await ensure_streams(js, {"commerce"})
    ann, bob, cid = uuid.UUID(int=101), uuid.UUID(int=102), uuid.UUID(int=103)
    for env in (
        _entitlement(ann, "ann", "pending", 1, v1=True),
        _entitlement(bob, "bob", "active", 1, v1=True),
        _entitlement(ann, "ann", "active", 2),
        _entitlement(cid, "cid", "active", 1),
    ):
        await js.publish(env.type, encode(env))
    await nc.close()


async def _entitlements(database_url: str) -> dict[str, tuple[str, int]]:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await conn.fetch("SELECT user_id, status, version FROM learning.entitlements")
        return {r["user_id"]: (r["status"], r["version"]) for r in rows}
    finally:
        await conn.close()


async def _sql(database_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _delete_message(nats_url: str, stream: str, seq: int) -> None:
    nc = await nats.connect(nats_url)
    await nc.jetstream().delete_msg(stream, seq)
    await nc.close()


def test_projection_rebuild_restores_rows_runs_again_and_refuses_a_broken_history(
    postgres_url: str, nats_url: str, tmp_path: Path
) -> None:
    from coursemesh.learning.service import SERVICE as LEARNING

    database_url = asyncio.run(migrated_database(postgres_url, LEARNING))
    asyncio.run(_commerce_history(nats_url))
    stack = {"database_url": database_url, "nats_url": nats_url}
    (tmp_path / "stack.json").write_text(json.dumps(stack))
    rebuild = ["projection", "rebuild", "learning", "entitlements", "--data-dir", str(tmp_path)]
    expected = {"ann": ("active", 2), "bob": ("active", 1), "cid": ("active", 1)}

    first = runner.invoke(app, rebuild)
    assert first.exit_code == 0, first.output
    assert "4 messages replayed (4 events applied, 0 duplicates)" in _flat(first.output)
    assert asyncio.run(_entitlements(database_url)) == expected

    asyncio.run(
        _sql(
            database_url,
            "DELETE FROM learning.entitlements WHERE user_id = 'bob'",
            "UPDATE learning.entitlements SET status = 'revoked', version = 99"
            " WHERE user_id = 'ann'",
        )
    )
    restored = runner.invoke(app, rebuild)
    assert restored.exit_code == 0, restored.output
    assert "entitlements 2 → 3 rows" in _flat(restored.output)
    assert asyncio.run(_entitlements(database_url)) == expected

    again = runner.invoke(app, rebuild)
    assert again.exit_code == 0, again.output
    assert "entitlements 3 → 3 rows;" in _flat(again.output)
    assert asyncio.run(_entitlements(database_url)) == expected

    asyncio.run(_delete_message(nats_url, "COMMERCE", 4))  # cid's only event
    asyncio.run(_sql(database_url, "DELETE FROM learning.entitlements WHERE user_id = 'bob'"))
    refused = runner.invoke(app, rebuild)
    assert refused.exit_code == 1
    assert "refused" in refused.output
    assert "nothing was changed" in _flat(refused.output)
    assert "bob" not in asyncio.run(_entitlements(database_url))

    forced = runner.invoke(app, [*rebuild, "--force"])
    assert forced.exit_code == 0, forced.output
    assert "forced: stream COMMERCE holds 3 of 4 messages" in _flat(forced.output)
    assert "entitlements 2 → 2 rows (1 not restored)" in _flat(forced.output)
    assert asyncio.run(_entitlements(database_url)) == {
        "ann": ("active", 2),
        "bob": ("active", 1),
    }


def test_projection_names_are_checked_and_listed(tmp_path: Path) -> None:
    listed = runner.invoke(app, ["projection", "list", "learning"])
    assert listed.exit_code == 0, listed.output
    assert "entitlements" in listed.output
    assert "commerce.entitlement.changed.v1" in listed.output
    assert "commerce.entitlement.changed.v2" in listed.output
    unknown = runner.invoke(
        app, ["projection", "rebuild", "learning", "courses", "--data-dir", str(tmp_path)]
    )
    assert unknown.exit_code == 2
    assert "learning has no rebuildable projection 'courses'" in _flat(unknown.output)
    assert "it has: workouts, entitlements, memberships" in _flat(unknown.output)
