"""The custom-gen service's tables, all in the ``customgen`` schema."""

from __future__ import annotations

import sqlalchemy as sa

from coursemesh.chassis.tables import spine_tables

SCHEMA = "customgen"
metadata = sa.MetaData(schema=SCHEMA)
spine = spine_tables(metadata)
