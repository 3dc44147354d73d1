"""The learning service's tables, all in the ``learning`` schema.

Two kinds: projections of other services' state (fed by events, each with the aggregate version
it last applied) and the player state learning owns (enrollments, completions, their history).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from coursemesh.chassis.tables import spine_tables

SCHEMA = "learning"
metadata = sa.MetaData(schema=SCHEMA)
spine = spine_tables(metadata)

_TZ = sa.DateTime(timezone=True)

# --- projections ---------------------------------------------------------------------------

# One row per course. A course is one aggregate with one version counter, but its events carry
# different parts of its state, so every part keeps the version of the event that last set it.
courses = sa.Table(
    "courses",
    metadata,
    sa.Column("course_id", sa.Uuid, primary_key=True),
    sa.Column("organization_id", sa.Uuid, nullable=False),
    # details part (catalog.course.details_changed.v1)
    sa.Column("name", sa.Text),
    sa.Column("description", sa.Text),
    sa.Column("image_url", sa.Text),
    sa.Column("duration_days", sa.Integer),
    sa.Column("details_version", sa.Integer, nullable=False, server_default=sa.text("0")),
    # status: carried by details_changed, published and archived alike
    sa.Column("status", sa.Text),
    sa.Column("status_version", sa.Integer, nullable=False, server_default=sa.text("0")),
    # lifecycle part (published / archived)
    sa.Column("published_at", _TZ),
    sa.Column("archived_at", _TZ),
    sa.Column("lifecycle_version", sa.Integer, nullable=False, server_default=sa.text("0")),
    # curriculum part (catalog.course.curriculum_changed.v1): the dense days as the event has them
    sa.Column("curriculum_version", sa.Integer),
    sa.Column("curriculum_days", sa.Integer),
    sa.Column("curriculum", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("workout_item_count", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("curriculum_event_version", sa.Integer, nullable=False, server_default=sa.text("0")),
    # release settings: carried by details_changed (details_version)
    sa.Column("release_mode", sa.Text, nullable=False, server_default=sa.text("'open'")),
    sa.Column("max_pauses", sa.Integer),
    sa.Column("max_pause_days", sa.Integer),
)

workouts = sa.Table(
    "workouts",
    metadata,
    sa.Column("workout_id", sa.Uuid, primary_key=True),
    sa.Column("organization_id", sa.Uuid, nullable=False),
    # Nullable: a deletion may arrive before any upsert (a tombstone row).
    sa.Column("title", sa.Text),
    sa.Column("description", sa.Text),
    sa.Column("duration_minutes", sa.Integer),
    sa.Column("instructions", sa.Text),
    sa.Column("media_urls", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("deleted_at", _TZ),
    sa.Column("version", sa.Integer, nullable=False),
)

entitlements = sa.Table(
    "entitlements",
    metadata,
    sa.Column("entitlement_id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("course_id", sa.Uuid, nullable=False),
    sa.Column("organization_id", sa.Uuid, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("access_revoked_at", _TZ),
    sa.Column("version", sa.Integer, nullable=False),
    # One entitlement per user per course: a re-purchase reactivates the same row.
    sa.UniqueConstraint("user_id", "course_id", name="uq_entitlements_user_course"),
    sa.Index("ix_entitlements_course_status", "course_id", "status"),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("organization_id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("role", sa.Text),
    sa.Column("is_staff", sa.Boolean, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

# --- player state (owned by learning) ------------------------------------------------------

enrollments = sa.Table(
    "enrollments",
    metadata,
    sa.Column("entitlement_id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("course_id", sa.Uuid, nullable=False),
    sa.Column("organization_id", sa.Uuid, nullable=False),
    sa.Column("start_date", sa.Date),
    sa.Column("completed_at", _TZ),
    sa.Column("restart_count", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("last_activity_at", _TZ),
    # aggregate version of the learning.* events about this enrollment
    sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("0")),
    # staff opened every day of a daily-release course for this buyer (who, when, why)
    sa.Column("unlocked_at", _TZ),
    sa.Column("unlocked_by", sa.Text),
    sa.Column("unlock_reason", sa.Text),
    sa.Index("ix_enrollments_course", "course_id"),
)

# One row per completed curriculum item (a workout on a given day) of the current run.
completions = sa.Table(
    "completions",
    metadata,
    sa.Column("entitlement_id", sa.Uuid, primary_key=True),
    sa.Column("item_id", sa.Uuid, primary_key=True),
    sa.Column("workout_id", sa.Uuid, nullable=False),
    sa.Column("day_offset", sa.Integer, nullable=False),
    sa.Column("curriculum_version", sa.Integer, nullable=False),
    sa.Column("completed_at", _TZ, nullable=False),
)

# Completions that left the current run: by a restart, or because their item left the curriculum.
completion_history = sa.Table(
    "completion_history",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("entitlement_id", sa.Uuid, nullable=False, index=True),
    sa.Column("item_id", sa.Uuid, nullable=False),
    sa.Column("workout_id", sa.Uuid, nullable=False),
    sa.Column("day_offset", sa.Integer, nullable=False),
    sa.Column("curriculum_version", sa.Integer, nullable=False),
    sa.Column("completed_at", _TZ, nullable=False),
    sa.Column("run", sa.Integer, nullable=False),  # restart_count of the run it belonged to
    sa.Column("reason", sa.Text, nullable=False),  # "restart" | "curriculum_changed"
    sa.Column("archived_at", _TZ, nullable=False),
)

# Every pause of an enrollment, of every run; at most one open (resumed_on null) per enrollment.
enrollment_pauses = sa.Table(
    "enrollment_pauses",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("entitlement_id", sa.Uuid, nullable=False),
    sa.Column("run", sa.Integer, nullable=False),  # restart_count of the run it belongs to
    sa.Column("paused_on", sa.Date, nullable=False),  # the buyer's calendar day
    sa.Column("paused_at", _TZ, nullable=False),
    sa.Column("paused_by", sa.Text, nullable=False),
    sa.Column("resumed_on", sa.Date),
    sa.Column("resumed_at", _TZ),
    sa.Column("resumed_by", sa.Text),
    sa.Column("days", sa.Integer),  # days it shifted the schedule by, once resumed
    sa.Index("ix_enrollment_pauses_entitlement", "entitlement_id", "id"),
    sa.Index(
        "uq_enrollment_pauses_open",
        "entitlement_id",
        unique=True,
        postgresql_where=sa.text("resumed_on IS NULL"),
    ),
)
