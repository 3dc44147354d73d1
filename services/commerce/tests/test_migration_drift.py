"""The migrations build exactly the tables the code declares (alembic's autogenerate finds
no difference), so a query written against the declarations meets the same schema in
production."""

from __future__ import annotations

from coursemesh.chassis.testing import migration_drift
from coursemesh.commerce.adapters.tables import metadata
from coursemesh.commerce.service import SERVICE


async def test_migrations_match_the_table_declarations(database_url: str) -> None:
    assert await migration_drift(database_url, SERVICE.schema, metadata) == []
