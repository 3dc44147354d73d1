"""learning: offline sync (each buyer's change counter and library change log, the offline
operations already applied, the last change of each item)

Revision ID: learning_0006
Revises: learning_0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "learning_0006"
down_revision = "learning_0005"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: new tables only


def upgrade() -> None:
    op.create_table(
        "sync_users",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
        schema="learning",
    )
    op.create_table(
        "sync_library",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "course_id"),
        schema="learning",
    )
    op.create_index(
        "ix_sync_library_user_seq", "sync_library", ["user_id", "seq"], schema="learning"
    )
    op.create_table(
        "sync_operations",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("operation_id", sa.Uuid(), nullable=False),
        sa.Column("outcome", JSONB(), nullable=True),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("user_id", "operation_id"),
        schema="learning",
    )
    op.create_table(
        "item_changes",
        sa.Column("entitlement_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("entitlement_id", "item_id"),
        schema="learning",
    )


def downgrade() -> None:
    op.drop_table("item_changes", schema="learning")
    op.drop_table("sync_operations", schema="learning")
    op.drop_table("sync_library", schema="learning")
    op.drop_table("sync_users", schema="learning")
