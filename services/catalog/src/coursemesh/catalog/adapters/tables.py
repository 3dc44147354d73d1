"""The catalog service's tables, all in the ``catalog`` schema."""

from __future__ import annotations

import sqlalchemy as sa

from coursemesh.chassis.tables import spine_tables

SCHEMA = "catalog"
metadata = sa.MetaData(schema=SCHEMA)
spine = spine_tables(metadata)
