"""The learning service's tables, all in the ``learning`` schema."""

from __future__ import annotations

import sqlalchemy as sa

from coursemesh.chassis.tables import spine_tables

SCHEMA = "learning"
metadata = sa.MetaData(schema=SCHEMA)
spine = spine_tables(metadata)
