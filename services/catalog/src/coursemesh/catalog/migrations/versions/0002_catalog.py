"""catalog: organizations, memberships, workouts, courses, curriculum, plan projection

Revision ID: catalog_0002
Revises: catalog_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "catalog_0002"
down_revision = "catalog_0001"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: new tables only

SCHEMA = "catalog"
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("slug", sa.Text, nullable=False, unique=True),
        sa.Column("logo_url", sa.Text),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "organization_id",
            sa.Uuid,
            sa.ForeignKey(f"{SCHEMA}.organizations.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("role", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("organization_id", "user_id"),
        schema=SCHEMA,
    )
    op.create_table(
        "workouts",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "organization_id",
            sa.Uuid,
            sa.ForeignKey(f"{SCHEMA}.organizations.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("duration_minutes", sa.Integer),
        sa.Column("instructions", sa.Text),
        sa.Column("media_urls", ARRAY(sa.Text), nullable=False),
        sa.Column("deleted_at", TZ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "programs",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "organization_id",
            sa.Uuid,
            sa.ForeignKey(f"{SCHEMA}.organizations.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("image_url", sa.Text),
        sa.Column("delivery_mode", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "course_configs",
        sa.Column("program_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.programs.id"), primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("duration_days", sa.Integer, nullable=False),
        sa.Column("preview_type", sa.Text, nullable=False),
        sa.Column("published_at", TZ),
        sa.Column("archived_at", TZ),
        sa.Column("curriculum_version", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'published', 'archived', 'cancelled')", name="status_known"
        ),
        sa.CheckConstraint("duration_days >= 1", name="duration_positive"),
        schema=SCHEMA,
    )
    op.create_table(
        "course_days",
        sa.Column("program_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.programs.id"), primary_key=True),
        sa.Column("day_offset", sa.Integer, primary_key=True),
        sa.Column("is_rest", sa.Boolean, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "course_items",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("program_id", sa.Uuid, nullable=False),
        sa.Column("day_offset", sa.Integer, nullable=False),
        sa.Column(
            "workout_id",
            sa.Uuid,
            sa.ForeignKey(f"{SCHEMA}.workouts.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id", "day_offset"],
            [f"{SCHEMA}.course_days.program_id", f"{SCHEMA}.course_days.day_offset"],
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("program_id", "day_offset", "position"),
        schema=SCHEMA,
    )
    op.create_table(
        "plan_projection",
        sa.Column("course_id", sa.Uuid, primary_key=True),
        sa.Column("plan_id", sa.Uuid, nullable=False),
        sa.Column("organization_id", sa.Uuid, nullable=False),
        sa.Column("price_in_cents", sa.Integer, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in (
        "plan_projection",
        "course_items",
        "course_days",
        "course_configs",
        "programs",
        "workouts",
        "memberships",
        "organizations",
    ):
        op.drop_table(table, schema=SCHEMA)
