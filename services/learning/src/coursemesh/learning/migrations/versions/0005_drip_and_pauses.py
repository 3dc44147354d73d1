"""learning: drip release and pauses (course release settings, the staff unlock of an
enrollment, every pause of an enrollment)

Revision ID: learning_0005
Revises: learning_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "learning_0005"
down_revision = "learning_0004"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: new nullable or defaulted columns and a new table


def upgrade() -> None:
    op.add_column(
        "courses",
        sa.Column("release_mode", sa.Text(), server_default=sa.text("'open'"), nullable=False),
        schema="learning",
    )
    op.add_column("courses", sa.Column("max_pauses", sa.Integer()), schema="learning")
    op.add_column("courses", sa.Column("max_pause_days", sa.Integer()), schema="learning")
    op.add_column(
        "enrollments", sa.Column("unlocked_at", sa.DateTime(timezone=True)), schema="learning"
    )
    op.add_column("enrollments", sa.Column("unlocked_by", sa.Text()), schema="learning")
    op.add_column("enrollments", sa.Column("unlock_reason", sa.Text()), schema="learning")
    op.create_table(
        "enrollment_pauses",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("entitlement_id", sa.Uuid(), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("paused_on", sa.Date(), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused_by", sa.Text(), nullable=False),
        sa.Column("resumed_on", sa.Date(), nullable=True),
        sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resumed_by", sa.Text(), nullable=True),
        sa.Column("days", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        schema="learning",
    )
    op.create_index(
        "ix_enrollment_pauses_entitlement",
        "enrollment_pauses",
        ["entitlement_id", "id"],
        unique=False,
        schema="learning",
    )
    op.create_index(
        "uq_enrollment_pauses_open",
        "enrollment_pauses",
        ["entitlement_id"],
        unique=True,
        schema="learning",
        postgresql_where=sa.text("resumed_on IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("enrollment_pauses", schema="learning")
    op.drop_column("enrollments", "unlock_reason", schema="learning")
    op.drop_column("enrollments", "unlocked_by", schema="learning")
    op.drop_column("enrollments", "unlocked_at", schema="learning")
    op.drop_column("courses", "max_pause_days", schema="learning")
    op.drop_column("courses", "max_pauses", schema="learning")
    op.drop_column("courses", "release_mode", schema="learning")
