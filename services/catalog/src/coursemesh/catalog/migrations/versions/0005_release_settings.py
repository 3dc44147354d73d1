"""catalog: a course's release mode and pause limits (drip release and pauses, enforced by
learning)

Revision ID: catalog_0005
Revises: catalog_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "catalog_0005"
down_revision = "catalog_0004"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: a defaulted column and two nullable ones

SCHEMA = "catalog"


def upgrade() -> None:
    op.add_column(
        "course_configs",
        sa.Column("release_mode", sa.Text(), server_default=sa.text("'open'"), nullable=False),
        schema=SCHEMA,
    )
    op.add_column("course_configs", sa.Column("max_pauses", sa.Integer()), schema=SCHEMA)
    op.add_column("course_configs", sa.Column("max_pause_days", sa.Integer()), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("course_configs", "max_pause_days", schema=SCHEMA)
    op.drop_column("course_configs", "max_pauses", schema=SCHEMA)
    op.drop_column("course_configs", "release_mode", schema=SCHEMA)
