"""The intake's statements, on the driver: consumed events become deliveries in the inbox
transaction, a run of events at a time, with SQL text written once (no ORM session and no
statement compilation per event: every public event of the platform comes through here)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from coursemesh.chassis.transaction import Driver
from coursemesh.integrations.adapters.store_sql import CHANNEL, delivery_values
from coursemesh.integrations.adapters.tables import custom_course_owners, deliveries, endpoints
from coursemesh.integrations.app.ports import Audience, NewDelivery

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


def _name(table: sa.Table) -> str:
    return f'"{table.schema}"."{table.name}"'


_OWNERS = f"""
SELECT custom_course_id, organization_id FROM {_name(custom_course_owners)}
 WHERE custom_course_id = ANY($1::uuid[])
"""

# Every (organization, type) pair of a run against the endpoints at once: the organization's
# enabled endpoints listing the type, oldest endpoint first.
_SUBSCRIBERS = f"""
SELECT u.organization_id, u.event_type, e.id
  FROM unnest($1::uuid[], $2::text[]) AS u(organization_id, event_type)
  JOIN {_name(endpoints)} AS e
    ON e.organization_id = u.organization_id AND e.enabled AND u.event_type = ANY(e.event_types)
 ORDER BY e.created_at, e.id
"""


@functools.lru_cache(maxsize=4)
def _insert_sql(columns: tuple[str, ...]) -> str:
    """Insert the rows (one array per column), an endpoint's delivery of an event it already has
    skipped; announce them on :data:`CHANNEL` (sent at commit) only when some were inserted."""
    arrays = ", ".join(
        f"${n}::{deliveries.c[c].type.compile(dialect=_PG)}[]"
        for n, c in enumerate(columns, start=1)
    )
    names = ", ".join(f'"{c}"' for c in columns)
    return f"""
WITH inserted AS (
    INSERT INTO {_name(deliveries)} ({names}) SELECT * FROM unnest({arrays})
    ON CONFLICT ON CONSTRAINT uq_deliveries_endpoint_event DO NOTHING
    RETURNING 1
)
SELECT pg_notify('{CHANNEL}', '') WHERE EXISTS (SELECT FROM inserted)
"""


class DriverIntake:
    """:class:`~coursemesh.integrations.app.ports.IntakeTransaction` on the driver connection
    of the inbox transaction; plus the custom-course owners the events need first."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def custom_course_organizations(
        self, custom_course_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, uuid.UUID]:
        """The organization of each custom course whose request we have seen."""
        if not custom_course_ids:
            return {}
        rows = await self._driver.fetch(_OWNERS, list(custom_course_ids))
        return {row[0]: row[1] for row in rows}

    async def subscribers(
        self, audiences: Sequence[Audience]
    ) -> Mapping[Audience, Sequence[uuid.UUID]]:
        if not audiences:
            return {}
        organizations, types = zip(*audiences, strict=True)
        rows = await self._driver.fetch(_SUBSCRIBERS, list(organizations), list(types))
        found: dict[Audience, list[uuid.UUID]] = {}
        for organization_id, event_type, endpoint_id in rows:
            found.setdefault((organization_id, event_type), []).append(endpoint_id)
        return found

    async def add_deliveries(self, new: Sequence[NewDelivery]) -> None:
        if not new:
            return
        rows = [delivery_values(d) for d in new]
        columns = tuple(rows[0])
        await self._driver.execute(_insert_sql(columns), *([r[c] for r in rows] for c in columns))
