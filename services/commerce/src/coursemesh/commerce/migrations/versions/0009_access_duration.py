"""commerce: access that lasts N days, and the notice before it ends

``plans.access_days`` (null: lifetime access), copied to each payment a checkout opens
(``payment_transactions.access_days``, with ``renewal`` set when the payment extends an access
the buyer still holds), so that a later change of the plan does not change what was sold.
``course_entitlements.access_ends_at`` is when an active access ends (null: never) and
``expiry_notice_for`` the end date its buyer was last told about (one notice per end date).
``receipts.user_id`` names the addressee of a mail that belongs to no payment (the sender asks
the identity provider for their address when the mail has none).

Revision ID: commerce_0009
Revises: commerce_0008
"""

import sqlalchemy as sa
from alembic import op

revision = "commerce_0009"
down_revision = "commerce_0008"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: nullable columns, a defaulted flag, a partial index

S = "commerce"


def upgrade() -> None:
    op.add_column("plans", sa.Column("access_days", sa.Integer()), schema=S)
    op.add_column("payment_transactions", sa.Column("access_days", sa.Integer()), schema=S)
    op.add_column(
        "payment_transactions",
        sa.Column("renewal", sa.Boolean(), nullable=False, server_default=sa.false()),
        schema=S,
    )
    op.add_column(
        "course_entitlements", sa.Column("access_ends_at", sa.DateTime(timezone=True)), schema=S
    )
    op.add_column(
        "course_entitlements",
        sa.Column("expiry_notice_for", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index(
        "ix_entitlements_access_ends",
        "course_entitlements",
        ["access_ends_at"],
        schema=S,
        postgresql_where=sa.text("status = 'active' AND access_ends_at IS NOT NULL"),
    )
    op.add_column("receipts", sa.Column("user_id", sa.Text()), schema=S)


def downgrade() -> None:
    op.drop_column("receipts", "user_id", schema=S)
    op.drop_index("ix_entitlements_access_ends", "course_entitlements", schema=S)
    op.drop_column("course_entitlements", "expiry_notice_for", schema=S)
    op.drop_column("course_entitlements", "access_ends_at", schema=S)
    op.drop_column("payment_transactions", "renewal", schema=S)
    op.drop_column("payment_transactions", "access_days", schema=S)
    op.drop_column("plans", "access_days", schema=S)
