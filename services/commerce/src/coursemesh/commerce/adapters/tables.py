"""The commerce service's tables, all in the ``commerce`` schema."""

from __future__ import annotations

import sqlalchemy as sa

from coursemesh.chassis.tables import spine_tables

SCHEMA = "commerce"
metadata = sa.MetaData(schema=SCHEMA)
spine = spine_tables(metadata)
