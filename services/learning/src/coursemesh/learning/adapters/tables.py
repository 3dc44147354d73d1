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

# --- reminder e-mails (owned by learning) ---------------------------------------------------

# One learner's reminders for one course, with the address the learner's token carried when
# they opted in (learning knows no other).
reminder_settings = sa.Table(
    "reminder_settings",
    metadata,
    sa.Column("entitlement_id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("course_id", sa.Uuid, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("local_time", sa.Time, nullable=False),
    sa.Column("time_zone", sa.Text, nullable=False),
    sa.Column("email", sa.Text),
    sa.Column("updated_at", _TZ, nullable=False),
    sa.Index("ix_reminder_settings_enabled", "entitlement_id", postgresql_where=sa.text("enabled")),
)

# Every reminder mail queued, once per (entitlement, kind, local date): the unique key makes a
# second scheduler (another replica, a restart) queue nothing more that day. Sent by a leased
# claim (``chassis.mail.LeasedMailQueue``).
reminder_sends = sa.Table(
    "reminder_sends",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("entitlement_id", sa.Uuid, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # "daily" | "nudge" | "completed"
    sa.Column("local_date", sa.Date, nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("unsubscribe_url", sa.Text, nullable=False),
    sa.Column("queued_at", _TZ, nullable=False),
    sa.Column("next_attempt_at", _TZ, nullable=False, server_default=sa.func.now()),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("sent_at", _TZ),
    sa.Column("last_error", sa.Text),
    sa.UniqueConstraint("entitlement_id", "kind", "local_date", name="uq_reminder_sends_day"),
    sa.Index(
        "ix_reminder_sends_due", "next_attempt_at", postgresql_where=sa.text("sent_at IS NULL")
    ),
)

# --- certificates (owned by learning) ------------------------------------------------------

# catalog's organizations, for the branding a certificate prints.
organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("organization_id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("logo_url", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),
)

# One per completed run of an enrollment; everything printed is captured at issue.
certificates = sa.Table(
    "certificates",
    metadata,
    sa.Column("certificate_id", sa.Uuid, primary_key=True),
    sa.Column("entitlement_id", sa.Uuid, nullable=False),
    sa.Column("run", sa.Integer, nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("course_id", sa.Uuid, nullable=False),
    sa.Column("organization_id", sa.Uuid, nullable=False),
    sa.Column("learner_name", sa.Text, nullable=False),
    sa.Column("course_name", sa.Text, nullable=False),
    sa.Column("organization_name", sa.Text),
    sa.Column("organization_logo_url", sa.Text),
    sa.Column("completed_on", sa.Date, nullable=False),
    sa.Column("issued_at", _TZ, nullable=False),
    sa.Column("stored_at", _TZ),  # the PDF is in the object store
    sa.Column("revoked_at", _TZ),
    sa.UniqueConstraint("entitlement_id", "run", name="uq_certificates_entitlement_run"),
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

# A buyer's ready custom course as custom-gen announced it (``custom_course.content``): what the
# buyer's devices hold of it, served by the sync without asking custom-gen. ``document`` is the
# canonical JSON its checksum is over, kept as text so the bytes survive unchanged.
custom_courses = sa.Table(
    "custom_courses",
    metadata,
    sa.Column("custom_course_id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("checksum", sa.Text, nullable=False),
    sa.Column("file_size_bytes", sa.BigInteger, nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("files", JSONB, nullable=False),
    sa.Column("updated_at", _TZ, nullable=False, server_default=sa.func.now()),
    sa.Index("ix_custom_courses_user", "user_id"),
)

# --- offline sync (owned by learning) ---------------------------------------------------------

# Each buyer's change counter: every change to what the buyer's devices hold raises it, under
# this row's lock, so one buyer's sequence numbers commit in order and a cursor never skips one.
sync_users = sa.Table(
    "sync_users",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
)

# The buyer's library as a change log: one row per course, stamped with the counter of its last
# change (removed: the buyer holds it no longer).
sync_library = sa.Table(
    "sync_library",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("course_id", sa.Uuid, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("removed", sa.Boolean, nullable=False),
    sa.Index("ix_sync_library_user_seq", "user_id", "seq"),
)

# Every offline operation a buyer sent, with its first outcome: a replay reports it again.
sync_operations = sa.Table(
    "sync_operations",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("operation_id", sa.Uuid, primary_key=True),
    sa.Column("outcome", JSONB),  # null only while its transaction runs
    sa.Column("recorded_at", _TZ, nullable=False, server_default=sa.func.now()),
)

# The last change of each item (a mark or an unmark, online or offline): an offline change older
# than it lost the race and is refused.
item_changes = sa.Table(
    "item_changes",
    metadata,
    sa.Column("entitlement_id", sa.Uuid, primary_key=True),
    sa.Column("item_id", sa.Uuid, primary_key=True),
    sa.Column("changed_at", _TZ, nullable=False),
    sa.Column("completed", sa.Boolean, nullable=False),
)
