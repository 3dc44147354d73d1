"""commerce: gifted courses

``gifts``: a course bought by one user for an e-mail address, its payment, the SHA-256 of its
claim link's token, and the entitlement of whoever claimed it.

Revision ID: commerce_0011
Revises: commerce_0010
"""

import sqlalchemy as sa
from alembic import op

revision = "commerce_0011"
down_revision = "commerce_0010"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: a new table only

S = "commerce"
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gifts",
        sa.Column("id", sa.UUID(), primary_key=True),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("course_id", sa.UUID(), nullable=False),
        sa.Column("course_name", sa.Text(), nullable=False),
        sa.Column("payer_user_id", sa.Text(), nullable=False),
        sa.Column("payer_email", sa.Text()),
        sa.Column("recipient_email", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("payment_transaction_id", sa.UUID(), nullable=False),
        sa.Column("claim_token_hash", sa.Text()),
        sa.Column("entitlement_id", sa.UUID()),
        sa.Column("claimed_by", sa.Text()),
        sa.Column("claimed_at", TZ),
        sa.Column("sent_at", TZ),
        sa.Column("send_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        # the plan's access duration when bought: the claimer's access lasts that long
        sa.Column("access_days", sa.Integer()),
        sa.UniqueConstraint("payment_transaction_id", name="uq_gifts_payment_transaction_id"),
        sa.UniqueConstraint("claim_token_hash", name="uq_gifts_claim_token_hash"),
        schema=S,
    )
    op.create_index("ix_gifts_payer_created", "gifts", ["payer_user_id", "created_at"], schema=S)


def downgrade() -> None:
    op.drop_table("gifts", schema=S)
