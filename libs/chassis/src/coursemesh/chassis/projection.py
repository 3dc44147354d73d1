"""Version-checked projections: apply an aggregate's state only when it is newer than ours."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession


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
    insert = pg_insert(table).values(dict(values))
    updates = {c: insert.excluded[c] for c in values if c not in key}
    upsert = insert.on_conflict_do_update(
        index_elements=[table.c[k] for k in key],
        set_=updates,
        where=table.c[version_column] < insert.excluded[version_column],
    ).returning(table.c[version_column])
    result = await session.execute(upsert)
    return result.first() is not None
