"""commerce: bulk grants run in the background, with their progress

``bulk_grant_jobs``: one row per file queued by staff, with its rows, the results of the rows
done so far (appended chunk by chunk, with ``processed``), and the lease of the runner working
on it.

Revision ID: commerce_0010
Revises: commerce_0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "commerce_0010"
down_revision = "commerce_0009"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: a new table

S = "commerce"


def upgrade() -> None:
    op.create_table(
        "bulk_grant_jobs",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("organization_id", UUID(as_uuid=True), nullable=False),
        sa.Column("course_id", UUID(as_uuid=True), nullable=False),
        sa.Column("staff_id", sa.Text(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("rows", JSONB(), nullable=False),
        sa.Column("results", JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done')", name="ck_bulk_grant_jobs_status"
        ),
        schema=S,
    )
    op.create_index(
        "ix_bulk_grant_jobs_open",
        "bulk_grant_jobs",
        ["created_at"],
        schema=S,
        postgresql_where=sa.text("status <> 'done'"),
    )


def downgrade() -> None:
    op.drop_index("ix_bulk_grant_jobs_open", "bulk_grant_jobs", schema=S)
    op.drop_table("bulk_grant_jobs", schema=S)
