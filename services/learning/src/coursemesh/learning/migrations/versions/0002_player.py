"""learning: projections (courses, workouts, entitlements, memberships) and player state
(enrollments, completions, completion history)

Revision ID: learning_0002
Revises: learning_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "learning_0002"
down_revision = "learning_0001"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: new tables and indexes only


def upgrade() -> None:
    op.create_table(
        "courses",
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("duration_days", sa.Integer(), nullable=True),
        sa.Column("details_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("status_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifecycle_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("curriculum_version", sa.Integer(), nullable=True),
        sa.Column("curriculum_days", sa.Integer(), nullable=True),
        sa.Column(
            "curriculum",
            postgresql.JSONB(astext_type=Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("workout_item_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "curriculum_event_version", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        sa.PrimaryKeyConstraint("course_id"),
        schema="learning",
    )
    op.create_table(
        "workouts",
        sa.Column("workout_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("instructions", sa.Text(), nullable=True),
        sa.Column(
            "media_urls",
            postgresql.JSONB(astext_type=Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("workout_id"),
        schema="learning",
    )
    op.create_table(
        "entitlements",
        sa.Column("entitlement_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("access_revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("entitlement_id"),
        sa.UniqueConstraint("user_id", "course_id", name="uq_entitlements_user_course"),
        schema="learning",
    )
    op.create_table(
        "memberships",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=True),
        sa.Column("is_staff", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "user_id"),
        schema="learning",
    )
    op.create_table(
        "enrollments",
        sa.Column("entitlement_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("restart_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("entitlement_id"),
        schema="learning",
    )
    op.create_table(
        "completions",
        sa.Column("entitlement_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("workout_id", sa.Uuid(), nullable=False),
        sa.Column("day_offset", sa.Integer(), nullable=False),
        sa.Column("curriculum_version", sa.Integer(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entitlement_id", "item_id"),
        schema="learning",
    )
    op.create_table(
        "completion_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("entitlement_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("workout_id", sa.Uuid(), nullable=False),
        sa.Column("day_offset", sa.Integer(), nullable=False),
        sa.Column("curriculum_version", sa.Integer(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        schema="learning",
    )
    op.create_index(
        "ix_entitlements_course_status",
        "entitlements",
        ["course_id", "status"],
        unique=False,
        schema="learning",
    )
    op.create_index(
        "ix_enrollments_course", "enrollments", ["course_id"], unique=False, schema="learning"
    )
    op.create_index(
        op.f("ix_learning_completion_history_entitlement_id"),
        "completion_history",
        ["entitlement_id"],
        unique=False,
        schema="learning",
    )


def downgrade() -> None:
    op.drop_table("completion_history", schema="learning")
    op.drop_table("completions", schema="learning")
    op.drop_table("enrollments", schema="learning")
    op.drop_table("memberships", schema="learning")
    op.drop_table("entitlements", schema="learning")
    op.drop_table("workouts", schema="learning")
    op.drop_table("courses", schema="learning")
