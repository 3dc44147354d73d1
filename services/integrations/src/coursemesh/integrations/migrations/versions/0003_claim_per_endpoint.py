"""integrations: the sender claims each endpoint's first due delivery (indexes per endpoint)

Revision ID: integrations_0003
Revises: integrations_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "integrations_0003"
down_revision = "integrations_0002"
branch_labels = None
depends_on = None
compatible_with_previous = True  # indexes only; the previous release's claim still works

S = "integrations"


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_endpoint_due",
        "deliveries",
        ["endpoint_id", "next_attempt_at"],
        schema=S,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_deliveries_endpoint_claimed",
        "deliveries",
        ["endpoint_id", "claimed_until"],
        schema=S,
        postgresql_where=sa.text("claimed_until IS NOT NULL"),
    )
    op.drop_index("ix_deliveries_due", "deliveries", schema=S)


def downgrade() -> None:
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        schema=S,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("ix_deliveries_endpoint_claimed", "deliveries", schema=S)
    op.drop_index("ix_deliveries_endpoint_due", "deliveries", schema=S)
