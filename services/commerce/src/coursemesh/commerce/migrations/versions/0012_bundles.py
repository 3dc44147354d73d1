"""commerce: course bundles, their purchases, and the payment of a bundle purchase

``bundles`` and ``bundle_courses`` (staff define them); ``bundle_purchases`` (one per checkout
of a bundle, with its one payment) and ``bundle_purchase_items`` (the entitlement it opened per
course); ``payment_transactions.bundle_purchase_id`` names the purchase a payment pays for.

Revision ID: commerce_0012
Revises: commerce_0011
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "commerce_0012"
down_revision = "commerce_0011"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: new tables and a nullable column

S = "commerce"
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("payment_transactions", sa.Column("bundle_purchase_id", sa.UUID()), schema=S)
    op.create_table(
        "bundles",
        sa.Column("id", sa.UUID(), primary_key=True),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("price_in_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("price_in_cents >= 0", name="ck_bundles_price"),
        schema=S,
    )
    op.create_index("ix_bundles_organization_id", "bundles", ["organization_id"], schema=S)
    op.create_table(
        "bundle_courses",
        sa.Column("bundle_id", sa.UUID(), sa.ForeignKey(f"{S}.bundles.id"), primary_key=True),
        sa.Column("course_id", sa.UUID(), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        schema=S,
    )
    op.create_table(
        "bundle_purchases",
        sa.Column("id", sa.UUID(), primary_key=True),
        sa.Column("bundle_id", sa.UUID(), sa.ForeignKey(f"{S}.bundles.id"), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("amount_in_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("payment_transaction_id", sa.UUID(), unique=True),
        sa.Column("excluded_course_ids", ARRAY(sa.UUID()), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.create_table(
        "bundle_purchase_items",
        sa.Column(
            "bundle_purchase_id",
            sa.UUID(),
            sa.ForeignKey(f"{S}.bundle_purchases.id"),
            primary_key=True,
        ),
        sa.Column("course_id", sa.UUID(), primary_key=True),
        sa.Column("entitlement_id", sa.UUID(), nullable=False),
        sa.Column("list_price_in_cents", sa.Integer(), nullable=False),
        schema=S,
    )
    op.create_index(
        "ix_bundle_purchase_items_entitlement_id",
        "bundle_purchase_items",
        ["entitlement_id"],
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("bundle_purchase_items", schema=S)
    op.drop_table("bundle_purchases", schema=S)
    op.drop_table("bundle_courses", schema=S)
    op.drop_table("bundles", schema=S)
    op.drop_column("payment_transactions", "bundle_purchase_id", schema=S)
