"""commerce: a plan's refund window, and the buyer's refund request on the payment

``plans.refund_window_days`` (null: no self-service refunds), copied to each payment a checkout
opens (``payment_transactions.refund_window_days``) so that a later change of the plan does not
change what a buyer was sold; ``payment_transactions.refund_requested_at`` records the buyer's
request (one refund per payment).

Revision ID: commerce_0008
Revises: commerce_0007
"""

import sqlalchemy as sa
from alembic import op

revision = "commerce_0008"
down_revision = "commerce_0007"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: nullable columns

S = "commerce"


def upgrade() -> None:
    op.add_column("plans", sa.Column("refund_window_days", sa.Integer()), schema=S)
    op.add_column("payment_transactions", sa.Column("refund_window_days", sa.Integer()), schema=S)
    op.add_column(
        "payment_transactions",
        sa.Column("refund_requested_at", sa.DateTime(timezone=True)),
        schema=S,
    )


def downgrade() -> None:
    op.drop_column("payment_transactions", "refund_requested_at", schema=S)
    op.drop_column("payment_transactions", "refund_window_days", schema=S)
    op.drop_column("plans", "refund_window_days", schema=S)
