"""commerce: each seller paid into its own account; return URLs per organization

``payment_accounts`` holds each organization's connected account at the payment provider and
what the provider last said of it; ``payment_transactions.provider_account_id`` is the account a
payment was opened on (its refunds and expiry go there), ``payment_page_url`` its hosted page.
``return_url_allowlists`` holds the URL prefixes a checkout of the organization may send its
buyer back to. The sandbox provider keeps
its connected accounts (``sandbox_accounts``) and each session's account, platform fee and
return URLs.

Revision ID: commerce_0005
Revises: commerce_0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "commerce_0005"
down_revision = "commerce_0004"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: new tables, nullable or defaulted columns

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payment_accounts",
        sa.Column("organization_id", sa.UUID(), primary_key=True),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("charges_enabled", sa.Boolean(), nullable=False),
        sa.Column("payouts_enabled", sa.Boolean(), nullable=False),
        sa.Column("details_submitted", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", _UTC, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("provider", "account_id", name="uq_payment_accounts_account"),
        schema="commerce",
    )
    op.create_table(
        "return_url_allowlists",
        sa.Column("organization_id", sa.UUID(), primary_key=True),
        sa.Column("urls", ARRAY(sa.Text()), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        schema="commerce",
    )
    op.add_column(
        "payment_transactions",
        sa.Column("provider_account_id", sa.Text(), nullable=True),
        schema="commerce",
    )
    op.add_column(
        "payment_transactions",
        sa.Column("payment_page_url", sa.Text(), nullable=True),
        schema="commerce",
    )
    op.create_table(
        "sandbox_accounts",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("business_name", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),  # onboarding | enabled
        sa.Column("return_url", sa.Text()),
        sa.Column("refresh_url", sa.Text()),
        sa.Column("link_expires_at", _UTC),
        sa.Column("created_at", _UTC, nullable=False, server_default=sa.func.now()),
        schema="commerce",
    )
    for column in (
        sa.Column("account_id", sa.Text(), nullable=True),
        sa.Column("application_fee_in_cents", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("success_url", sa.Text(), nullable=True),
        sa.Column("cancel_url", sa.Text(), nullable=True),
    ):
        op.add_column("sandbox_sessions", column, schema="commerce")


def downgrade() -> None:
    for column in ("cancel_url", "success_url", "application_fee_in_cents", "account_id"):
        op.drop_column("sandbox_sessions", column, schema="commerce")
    op.drop_table("sandbox_accounts", schema="commerce")
    op.drop_column("payment_transactions", "payment_page_url", schema="commerce")
    op.drop_column("payment_transactions", "provider_account_id", schema="commerce")
    op.drop_table("return_url_allowlists", schema="commerce")
    op.drop_table("payment_accounts", schema="commerce")
