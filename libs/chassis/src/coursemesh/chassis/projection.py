"""Version-checked projections: apply an aggregate's state only when it is newer than ours."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession


@functools.lru_cache(maxsize=256)
def _upsert_statement(
    table: sa.Table, columns: tuple[str, ...], key: tuple[str, ...], version_column: str
) -> Any:
    """One statement object per shape, its values bound at execution: building and
    cache-keying a fresh statement per event cost more than running it."""
    insert = pg_insert(table)
    return insert.on_conflict_do_update(
        index_elements=[table.c[k] for k in key],
        set_={c: insert.excluded[c] for c in columns if c not in key},
        where=table.c[version_column] < insert.excluded[version_column],
    ).returning(table.c[version_column])


async def upsert_if_newer(
    session: AsyncSession,
    table: sa.Table,
    values: Mapping[str, Any],
    *,
    key: Sequence[str],
    version_column: str = "version",
) -> bool:
    """Insert the row, or update it when ``values[version_column]`` is greater than the stored
    version. Returns True when the row was written, False when the event was stale."""
    upsert = _upsert_statement(table, tuple(values), tuple(key), version_column)
    result = await session.execute(upsert, dict(values))
    return result.first() is not None
