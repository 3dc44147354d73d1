"""Tables of the two demo services (a producer and a projector of demo counters)."""

from __future__ import annotations

import sqlalchemy as sa

from coursemesh.chassis.tables import spine_tables

producer_metadata = sa.MetaData(schema="demo_producer")
producer_spine = spine_tables(producer_metadata)
counters = sa.Table(
    "counters",
    producer_metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

projector_metadata = sa.MetaData(schema="demo_projector")
projector_spine = spine_tables(projector_metadata)
counter_view = sa.Table(
    "counter_view",
    projector_metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)
# One row per event the projector handled: proves exactly-once and the order of effects.
counter_effects = sa.Table(
    "counter_effects",
    projector_metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("counter_id", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("applied", sa.Boolean, nullable=False),
)
