"""``coursemesh outbox status`` and ``coursemesh deadletter list|replay`` against a real
PostgreSQL and a real JetStream server, addresses given or read from a stack's ``stack.json``.
(Synchronous tests: the commands run their own event loop, as from a shell.)"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import nats
from typer.testing import CliRunner

from coursemesh.catalog.service import SERVICE as CATALOG
from coursemesh.chassis.bus import ensure_streams
from coursemesh.chassis.consumer import (
    HEADER_CONSUMER,
    HEADER_DELIVERIES,
    HEADER_ERROR,
    HEADER_ORIGINAL_SUBJECT,
)
from coursemesh.chassis.testing import migrated_database
from coursemesh.contracts import DEAD_LETTER_STREAM
from coursemesh.contracts.subjects import DEAD_LETTER_PREFIX
from coursemesh.devstack.cli import app

runner = CliRunner()


def _outbox_rows(database_url: str) -> None:
    """Catalog's outbox: one event published, two waiting, one of them failing."""

    async def write() -> None:
        import asyncpg

        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            for published, error in ((True, None), (False, None), (False, "nats: timeout")):
                await conn.execute(
                    "INSERT INTO catalog.outbox (event_id, type, subject, aggregate_id,"
                    " aggregate_version, body, published_at, last_error)"
                    " VALUES ($1, 'catalog.course.published.v1', 'catalog.course.published.v1',"
                    " 'c1', 1, '\\x00', CASE WHEN $2 THEN now() END, $3)",
                    uuid.uuid4(),
                    published,
                    error,
                )
        finally:
            await conn.close()

    asyncio.run(write())


def test_outbox_status_shows_each_services_backlog_and_fails_on_a_failing_row(
    postgres_url: str,
) -> None:
    database_url = asyncio.run(migrated_database(postgres_url, CATALOG))
    _outbox_rows(database_url)
    result = runner.invoke(app, ["outbox", "status", "--database-url", database_url])
    assert result.exit_code == 1, result.output  # a failing row: the operator must look
    [row] = [line for line in result.output.splitlines() if "catalog" in line]
    cells = [c.strip() for c in row.split("│") if c.strip()]
    assert cells[0] == "catalog"
    assert (cells[1], cells[-2], cells[-1]) == ("2", "1", "1")  # unpublished, failing, published


def test_commands_without_an_address_or_a_stack_say_how_to_get_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["deadletter", "list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "start the stack (`make up`) or pass it" in " ".join(result.output.split())


def test_deadletter_list_and_replay_through_the_stacks_address(
    nats_url: str, tmp_path: Path
) -> None:
    original = f"demo.thing.happened.v1.{uuid.uuid4().hex[:6]}"

    async def dead_letter() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        if await _exists(js):
            await js.purge_stream(DEAD_LETTER_STREAM)
        await ensure_streams(js, {"demo"})
        await js.publish(
            f"{DEAD_LETTER_PREFIX}.demo",
            b'{"x":1}',
            headers={
                HEADER_ORIGINAL_SUBJECT: original,
                HEADER_CONSUMER: "projector",
                HEADER_ERROR: "ValueError: boom",
                HEADER_DELIVERIES: "5",
            },
        )
        await nc.close()

    asyncio.run(dead_letter())
    (tmp_path / "stack.json").write_text(json.dumps({"nats_url": nats_url}))
    listed = runner.invoke(app, ["deadletter", "list", "--data-dir", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert "1 dead letter(s)" in listed.output
    assert "projector" in listed.output
    refused = runner.invoke(app, ["deadletter", "replay", "--data-dir", str(tmp_path)])
    assert refused.exit_code == 2
    replayed = runner.invoke(app, ["deadletter", "replay", "--all", "--data-dir", str(tmp_path)])
    assert replayed.exit_code == 0, replayed.output
    assert f"-> {original}" in replayed.output

    async def after() -> tuple[int, bytes]:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        left = (await js.stream_info(DEAD_LETTER_STREAM)).state.messages
        again = await js.get_last_msg("DEMO", original)
        await nc.close()
        return left, again.data or b""

    assert asyncio.run(after()) == (0, b'{"x":1}')


async def _exists(js: nats.js.JetStreamContext) -> bool:
    try:
        await js.stream_info(DEAD_LETTER_STREAM)
        return True
    except nats.js.errors.NotFoundError:
        return False
