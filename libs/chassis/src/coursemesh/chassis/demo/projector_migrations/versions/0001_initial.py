"""demo projector: spine tables, counter view and effect log

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from coursemesh.chassis.tables import create_spine_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: creates the schema's first tables

SCHEMA = "demo_projector"


def upgrade() -> None:
    create_spine_tables(SCHEMA)
    op.create_table(
        "counter_view",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "counter_effects",
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("counter_id", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("applied", sa.Boolean, nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("counter_effects", schema=SCHEMA)
    op.drop_table("counter_view", schema=SCHEMA)
    op.drop_table("inbox", schema=SCHEMA)
    op.drop_table("outbox", schema=SCHEMA)
