"""commerce: the open payments by age

A partial index of ``payment_transactions`` in status ``pending`` by ``created_at``: the
checkout sweeper ends the open payments no pending entitlement waits for (a renewal's, a
gift's) once older than the checkout's TTL, and looks for them at every sweep.

Revision ID: commerce_0013
Revises: commerce_0012
"""

import sqlalchemy as sa
from alembic import op

revision = "commerce_0013"
down_revision = "commerce_0012"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: an index

S = "commerce"


def upgrade() -> None:
    op.create_index(
        "ix_payment_transactions_pending_created",
        "payment_transactions",
        ["created_at"],
        schema=S,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_payment_transactions_pending_created", "payment_transactions", schema=S)
