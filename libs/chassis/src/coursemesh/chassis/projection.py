"""Version-checked projections: apply an aggregate's state only when it is newer than ours."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from coursemesh.chassis.transaction import Transaction


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


_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


@functools.lru_cache(maxsize=256)
def _upsert_many_sql(
    table: sa.Table, columns: tuple[str, ...], key: tuple[str, ...], version_column: str
) -> str:
    """``INSERT … SELECT FROM unnest(one array per column) ON CONFLICT … WHERE older``: one
    statement (and one round trip) for a whole batch of rows, whatever its size."""
    arrays = []
    for n, name in enumerate(columns, start=1):
        column_type = table.c[name].type
        if isinstance(column_type, (sa.ARRAY, sa.JSON)):
            # unnest flattens a two-dimensional array (one row per element), and JSON would
            # need a codec of its own: such projections keep upsert_if_newer.
            raise ValueError(f"{table.name}.{name}: {column_type} cannot be batch-upserted")
        arrays.append(f"${n}::{column_type.compile(dialect=_PG)}[]")
    aliases = ", ".join(f"c{n}" for n in range(1, len(columns) + 1))
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in key)
    names = ", ".join(f'"{c}"' for c in columns)
    quoted_key = ", ".join(f'"{k}"' for k in key)
    target = f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'
    return (
        f"INSERT INTO {target} ({names}) "
        f"SELECT * FROM unnest({', '.join(arrays)}) AS u({aliases}) "
        f"ON CONFLICT ({quoted_key}) DO UPDATE SET {updates} "
        f'WHERE {target}."{version_column}" < excluded."{version_column}" '
        f"RETURNING {quoted_key}"
    )


def newest_per_key(
    rows: Iterable[Mapping[str, Any]], key: Sequence[str], version_column: str = "version"
) -> list[Mapping[str, Any]]:
    """The row with the greatest version for each key, in first-seen key order (one statement
    cannot update the same row twice)."""
    newest: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in rows:
        k = tuple(row[c] for c in key)
        held = newest.get(k)
        if held is None or row[version_column] > held[version_column]:
            newest[k] = row
    return list(newest.values())


async def upsert_many_if_newer(
    uow: Transaction,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    version_column: str = "version",
) -> set[tuple[Any, ...]]:
    """:func:`upsert_if_newer` for a batch of rows (all with the same columns), as one
    statement. Of several rows for one key, only the newest counts. Returns the keys written
    (those whose row was newer than the stored one)."""
    if not rows:
        return set()
    columns = tuple(rows[0])
    sql = _upsert_many_sql(table, columns, tuple(key), version_column)
    newest = newest_per_key(rows, key, version_column)
    arrays = [[row[c] for row in newest] for c in columns]
    driver = await uow.driver()
    written = await driver.fetch(sql, *arrays)
    return {tuple(record) for record in written}
