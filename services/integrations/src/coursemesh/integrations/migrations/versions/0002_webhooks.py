"""integrations: webhook endpoints, deliveries and their attempts; memberships and custom
course owners (projections)

Revision ID: integrations_0002
Revises: integrations_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "integrations_0002"
down_revision = "integrations_0001"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: new tables and indexes only

S = "integrations"
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "memberships",
        sa.Column("organization_id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Text(), primary_key=True),
        sa.Column("role", sa.Text()),
        sa.Column("is_staff", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        schema=S,
    )
    op.create_table(
        "custom_course_owners",
        sa.Column("custom_course_id", sa.Uuid(), primary_key=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        schema=S,
    )
    op.create_table(
        "endpoints",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("event_types", ARRAY(sa.Text()), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text()),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("previous_secret", sa.Text()),
        sa.Column("previous_secret_expires_at", TZ),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        schema=S,
    )
    op.create_index("ix_endpoints_organization_id", "endpoints", ["organization_id"], schema=S)
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "endpoint_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.endpoints.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("webhook_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Uuid()),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ),
        sa.Column("claimed_until", TZ),
        sa.Column("last_response_status", sa.Integer()),
        sa.Column("last_latency_ms", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("endpoint_id", "event_id", name="uq_deliveries_endpoint_event"),
        schema=S,
    )
    op.create_index(
        "ix_deliveries_endpoint_created", "deliveries", ["endpoint_id", "created_at"], schema=S
    )
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        schema=S,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_deliveries_created", "deliveries", ["created_at"], schema=S)
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "delivery_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("response_status", sa.Integer()),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("response_excerpt", sa.Text()),
        schema=S,
    )
    op.create_index(
        "ix_delivery_attempts_delivery_id", "delivery_attempts", ["delivery_id"], schema=S
    )


def downgrade() -> None:
    for table in ("delivery_attempts", "deliveries", "endpoints", "custom_course_owners"):
        op.drop_table(table, schema=S)
    op.drop_table("memberships", schema=S)
