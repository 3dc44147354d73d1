"""catalog: index memberships by user (a caller's organizations, GET /organizations)

Revision ID: catalog_0004
Revises: catalog_0003
"""

from alembic import op

revision = "catalog_0004"
down_revision = "catalog_0003"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: an index, no table changes

SCHEMA = "catalog"


def upgrade() -> None:
    op.create_index("ix_memberships_user_id", "memberships", ["user_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_memberships_user_id", table_name="memberships", schema=SCHEMA)
