"""Operations on a running stack, for the ``coursemesh`` command line: the outboxes' backlog
and the dead-letter stream. Addresses come from the stack's ``stack.json`` (or are given)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
import nats

from coursemesh.chassis.deadletter import DeadLetter, list_dead_letters, replay
from coursemesh.devstack.services import SERVICES
from coursemesh.devstack.stack import read_stack_json

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
