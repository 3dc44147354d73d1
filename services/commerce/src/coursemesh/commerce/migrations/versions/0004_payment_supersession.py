"""commerce: one open payment per entitlement, late payments refunded

A new checkout of a pending (or revoked) entitlement supersedes the payment still open for it:
``payment_transactions`` keeps why a payment ended as it did (``status_reason``: ``superseded``,
``late_payment_superseded``, ``late_payment_already_active``), the payment that replaced it
(``superseded_by``) and when a refund was recorded (``refunded_at``); ``payment_transitions`` is
the payments' audit trail (as ``entitlement_transitions`` is the entitlements').

Revision ID: commerce_0004
Revises: commerce_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "commerce_0004"
down_revision = "commerce_0003"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: nullable columns, an index, a new table


def upgrade() -> None:
    op.add_column(
        "payment_transactions",
        sa.Column("status_reason", sa.Text(), nullable=True),
        schema="commerce",
    )
    op.add_column(
        "payment_transactions",
        sa.Column("superseded_by", sa.UUID(), nullable=True),
        schema="commerce",
    )
    op.add_column(
        "payment_transactions",
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        schema="commerce",
    )
    op.create_index(
        "ix_payment_transactions_open_entitlement",
        "payment_transactions",
        ["entitlement_id"],
        unique=False,
        schema="commerce",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "payment_transitions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("transaction_id", sa.UUID(), nullable=False),
        sa.Column("from_status", sa.Text(), nullable=False),
        sa.Column("to_status", sa.Text(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        schema="commerce",
    )
    op.create_index(
        "ix_payment_transitions_transaction_id",
        "payment_transitions",
        ["transaction_id"],
        unique=False,
        schema="commerce",
    )


def downgrade() -> None:
    op.drop_index(
        "ix_payment_transitions_transaction_id", table_name="payment_transitions", schema="commerce"
    )
    op.drop_table("payment_transitions", schema="commerce")
    op.drop_index(
        "ix_payment_transactions_open_entitlement",
        table_name="payment_transactions",
        schema="commerce",
    )
    for column in ("refunded_at", "superseded_by", "status_reason"):
        op.drop_column("payment_transactions", column, schema="commerce")
