"""custom-gen: purchases, memberships, custom courses, generation jobs, regen requests

Revision ID: customgen_0002
Revises: customgen_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "customgen_0002"
down_revision = "customgen_0001"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: new tables and indexes only

S = "customgen"
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "custom_course_purchases",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("organization_id", sa.Uuid, nullable=False),
        sa.Column("offer_id", sa.Uuid, nullable=False),
        sa.Column("course_code", sa.Text, nullable=False),
        sa.Column("offer_title", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("custom_course_id", sa.Uuid),
        sa.Column("purchased_at", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('awaiting_intake', 'submitted')", name="purchase_status"),
        schema=S,
    )
    op.create_index("purchases_by_user", "custom_course_purchases", ["user_id"], schema=S)
    op.create_table(
        "memberships",
        sa.Column("organization_id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("role", sa.Text),
        sa.Column("is_staff", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        schema=S,
    )
    op.create_table(
        "custom_courses",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("organization_id", sa.Uuid, nullable=False),
        sa.Column("purchase_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("course_code", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("data", pg.JSON, nullable=False),
        sa.Column("checksum", sa.Text, nullable=False),
        sa.Column("file_size_bytes", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("course_code ~ '^X[A-Z0-9]{5}$'", name="custom_course_code"),
        sa.CheckConstraint("status IN ('generating', 'ready', 'failed')", name="course_status"),
        # The invariant the handshake relies on, held by the database itself: the stored
        # checksum and size always describe exactly the stored data.
        sa.CheckConstraint(
            "checksum = md5(data::text) AND file_size_bytes = octet_length(data::text)",
            name="checksum_matches_data",
        ),
        schema=S,
    )
    op.create_index("custom_courses_by_user", "custom_courses", ["user_id"], schema=S)
    op.create_index(
        "custom_courses_by_org", "custom_courses", ["organization_id", "created_at"], schema=S
    )
    op.create_table(
        "generation_jobs",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("custom_course_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("regen_request_id", sa.Uuid),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("state", pg.JSONB, nullable=False, server_default="{}"),
        sa.Column("next_attempt_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("last_error", sa.Text),
        sa.Column("failed_step", sa.Text),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("kind IN ('generate', 'regenerate')", name="job_kind"),
        sa.CheckConstraint("status IN ('pending', 'done', 'failed')", name="job_status"),
        schema=S,
    )
    op.create_index(
        "jobs_due",
        "generation_jobs",
        ["next_attempt_at"],
        schema=S,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("jobs_by_course", "generation_jobs", ["custom_course_id"], schema=S)
    op.create_table(
        "regen_requests",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("custom_course_id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("organization_id", sa.Uuid, nullable=False),
        sa.Column("audio_id", sa.Uuid, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("decided_by", sa.Text),
        sa.Column("decision_note", sa.Text),
        sa.Column("decided_at", TZ),
        sa.Column("completed_at", TZ),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "status IN ('open', 'approved', 'rejected', 'completed', 'failed')",
            name="regen_status",
        ),
        schema=S,
    )
    # One open (or approved, in progress) request per audio file.
    op.create_index(
        "one_open_regen_per_audio",
        "regen_requests",
        ["custom_course_id", "audio_id"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("status IN ('open', 'approved')"),
    )
    op.create_index("regen_by_user", "regen_requests", ["user_id", "created_at"], schema=S)
    op.create_index("regen_by_org", "regen_requests", ["organization_id", "created_at"], schema=S)


def downgrade() -> None:
    for table in (
        "regen_requests",
        "generation_jobs",
        "custom_courses",
        "memberships",
        "custom_course_purchases",
    ):
        op.drop_table(table, schema=S)
