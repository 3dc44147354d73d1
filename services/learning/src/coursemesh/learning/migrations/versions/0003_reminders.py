"""learning: reminder e-mails (settings per entitlement, one queued send per kind and local day)

Revision ID: learning_0003
Revises: learning_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "learning_0003"
down_revision = "learning_0002"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: new tables only


def upgrade() -> None:
    op.create_table(
        "reminder_settings",
        sa.Column("entitlement_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("local_time", sa.Time(), nullable=False),
        sa.Column("time_zone", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entitlement_id"),
        schema="learning",
    )
    op.create_index(
        "ix_reminder_settings_enabled",
        "reminder_settings",
        ["entitlement_id"],
        schema="learning",
        postgresql_where=sa.text("enabled"),
    )
    op.create_table(
        "reminder_sends",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entitlement_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("unsubscribe_url", sa.Text(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entitlement_id", "kind", "local_date", name="uq_reminder_sends_day"),
        schema="learning",
    )
    op.create_index(
        "ix_reminder_sends_due",
        "reminder_sends",
        ["next_attempt_at"],
        schema="learning",
        postgresql_where=sa.text("sent_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_reminder_sends_due", table_name="reminder_sends", schema="learning")
    op.drop_table("reminder_sends", schema="learning")
    op.drop_index("ix_reminder_settings_enabled", table_name="reminder_settings", schema="learning")
    op.drop_table("reminder_settings", schema="learning")
