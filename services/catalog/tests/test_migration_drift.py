"""The migrations build exactly the tables the code declares (alembic's autogenerate finds
no difference), so a query written against the declarations meets the same schema in
production."""

from __future__ import annotations

from coursemesh.catalog.adapters.tables import metadata
from coursemesh.catalog.service import SERVICE
from coursemesh.chassis.testing import migration_drift


async def test_migrations_match_the_table_declarations(database_url: str) -> None:
    assert await migration_drift(database_url, SERVICE.schema, metadata) == []
