"""learning: the buyers' custom courses (custom-gen's content events) for the offline sync

Revision ID: learning_0007
Revises: learning_0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "learning_0007"
down_revision = "learning_0006"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: a new table only


def upgrade() -> None:
    op.create_table(
        "custom_courses",
        sa.Column("custom_course_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("checksum", sa.Text(), nullable=False),
        sa.Column("file_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("files", JSONB(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("custom_course_id"),
        schema="learning",
    )
    op.create_index("ix_custom_courses_user", "custom_courses", ["user_id"], schema="learning")


def downgrade() -> None:
    op.drop_table("custom_courses", schema="learning")
