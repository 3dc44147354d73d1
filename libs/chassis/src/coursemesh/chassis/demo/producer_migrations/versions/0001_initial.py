"""demo producer: spine tables and counters

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

SCHEMA = "demo_producer"


def upgrade() -> None:
    create_spine_tables(SCHEMA)
    op.create_table(
        "counters",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("counters", schema=SCHEMA)
    op.drop_table("inbox", schema=SCHEMA)
    op.drop_table("outbox", schema=SCHEMA)
