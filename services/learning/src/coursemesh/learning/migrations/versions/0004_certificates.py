"""learning: certificates (one per completed run) and the organizations projection they print

Revision ID: learning_0004
Revises: learning_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "learning_0004"
down_revision = "learning_0003"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: new tables only


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("logo_url", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organization_id"),
        schema="learning",
    )
    op.create_table(
        "certificates",
        sa.Column("certificate_id", sa.Uuid(), nullable=False),
        sa.Column("entitlement_id", sa.Uuid(), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("learner_name", sa.Text(), nullable=False),
        sa.Column("course_name", sa.Text(), nullable=False),
        sa.Column("organization_name", sa.Text(), nullable=True),
        sa.Column("organization_logo_url", sa.Text(), nullable=True),
        sa.Column("completed_on", sa.Date(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("certificate_id"),
        sa.UniqueConstraint("entitlement_id", "run", name="uq_certificates_entitlement_run"),
        schema="learning",
    )


def downgrade() -> None:
    op.drop_table("certificates", schema="learning")
    op.drop_table("organizations", schema="learning")
