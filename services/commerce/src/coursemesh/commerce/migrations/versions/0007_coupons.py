"""commerce: coupons and the checkouts that used them

Revision ID: commerce_0007
Revises: commerce_0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "commerce_0007"
down_revision = "commerce_0006"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: new tables only

S = "commerce"
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "coupons",
        sa.Column("id", sa.UUID(), primary_key=True),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("percent_off", sa.Integer()),
        sa.Column("amount_off_cents", sa.Integer()),
        sa.Column("course_ids", ARRAY(sa.UUID())),
        sa.Column("valid_from", TZ),
        sa.Column("valid_until", TZ),
        sa.Column("max_redemptions", sa.Integer()),
        sa.Column("max_per_buyer", sa.Integer()),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("organization_id", "code", name="uq_coupons_organization_code"),
        sa.CheckConstraint(
            "(percent_off IS NULL) <> (amount_off_cents IS NULL)", name="ck_coupons_one_discount"
        ),
        schema=S,
    )
    op.create_table(
        "coupon_redemptions",
        sa.Column("id", sa.UUID(), primary_key=True),
        sa.Column("coupon_id", sa.UUID(), sa.ForeignKey(f"{S}.coupons.id"), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("course_id", sa.UUID(), nullable=False),
        sa.Column("entitlement_id", sa.UUID(), nullable=False),
        sa.Column("payment_transaction_id", sa.UUID(), unique=True),
        sa.Column("price_in_cents", sa.Integer(), nullable=False),
        sa.Column("discount_in_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.create_index(
        "ix_coupon_redemptions_coupon_user",
        "coupon_redemptions",
        ["coupon_id", "user_id"],
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("coupon_redemptions", schema=S)
    op.drop_table("coupons", schema=S)
