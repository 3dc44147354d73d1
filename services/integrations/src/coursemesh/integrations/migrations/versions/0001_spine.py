"""integrations: outbox and inbox

Revision ID: integrations_0001
Revises:
"""

from coursemesh.chassis.tables import create_spine_tables

revision = "integrations_0001"
down_revision = None
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: creates the schema's first tables


def upgrade() -> None:
    create_spine_tables("integrations")


def downgrade() -> None:
    from alembic import op

    op.drop_table("inbox", schema="integrations")
    op.drop_table("outbox", schema="integrations")
