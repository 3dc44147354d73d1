"""commerce: trace context on sandbox webhook deliveries

The W3C trace context (``traceparent``/``tracestate``) of the Pay/Decline request that queued a
delivery, so the sender continues that trace when it POSTs the webhook.

Revision ID: commerce_0003
Revises: commerce_0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "commerce_0003"
down_revision = "commerce_0002"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: one nullable column


def upgrade() -> None:
    op.add_column(
        "sandbox_webhook_deliveries",
        sa.Column("trace_context", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        schema="commerce",
    )


def downgrade() -> None:
    op.drop_column("sandbox_webhook_deliveries", "trace_context", schema="commerce")
