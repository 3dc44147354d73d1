"""The catalog service's tables, all in the ``catalog`` schema.

A course is a ``programs`` row (the course id is the program id) plus its ``course_configs``
row; the curriculum is ``course_days`` (days that were set) and ``course_items`` (one row per
(day, workout) occurrence: the item id, its day and its position).
Every aggregate keeps ``version``: the ``aggregate_version`` of the last event it published.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from coursemesh.chassis.tables import spine_tables

SCHEMA = "catalog"
metadata = sa.MetaData(schema=SCHEMA)
spine = spine_tables(metadata)

_TZ = sa.DateTime(timezone=True)

organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("slug", sa.Text, nullable=False, unique=True),
    sa.Column("logo_url", sa.Text),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", _TZ, nullable=False),
    sa.Column("updated_at", _TZ, nullable=False),
)

# A removed membership keeps its row with role NULL: the membership id and the version of the
# (organization, user) aggregate survive removal and re-adding (docs/events.md).
memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "organization_id", sa.Uuid, sa.ForeignKey("organizations.id"), nullable=False, index=True
    ),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("role", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", _TZ, nullable=False),
    sa.Column("updated_at", _TZ, nullable=False),
    sa.UniqueConstraint("organization_id", "user_id"),
    # A caller's organizations (GET /organizations); migration catalog_0004.
    sa.Index("ix_memberships_user_id", "user_id"),
)

workouts = sa.Table(
    "workouts",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "organization_id", sa.Uuid, sa.ForeignKey("organizations.id"), nullable=False, index=True
    ),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("duration_minutes", sa.Integer),
    sa.Column("instructions", sa.Text),
    sa.Column("media_urls", ARRAY(sa.Text), nullable=False),
    sa.Column("deleted_at", _TZ),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", _TZ, nullable=False),
    sa.Column("updated_at", _TZ, nullable=False),
)

programs = sa.Table(
    "programs",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "organization_id", sa.Uuid, sa.ForeignKey("organizations.id"), nullable=False, index=True
    ),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("image_url", sa.Text),
    sa.Column("delivery_mode", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("created_at", _TZ, nullable=False),
    sa.Column("updated_at", _TZ, nullable=False),
)

course_configs = sa.Table(
    "course_configs",
    metadata,
    sa.Column("program_id", sa.Uuid, sa.ForeignKey("programs.id"), primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("duration_days", sa.Integer, nullable=False),
    sa.Column("preview_type", sa.Text, nullable=False),
    sa.Column("release_mode", sa.Text, nullable=False, server_default=sa.text("'open'")),
    sa.Column("max_pauses", sa.Integer),
    sa.Column("max_pause_days", sa.Integer),
    sa.Column("published_at", _TZ),
    sa.Column("archived_at", _TZ),
    sa.Column("curriculum_version", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

course_days = sa.Table(
    "course_days",
    metadata,
    sa.Column("program_id", sa.Uuid, sa.ForeignKey("programs.id"), primary_key=True),
    sa.Column("day_offset", sa.Integer, primary_key=True),
    sa.Column("is_rest", sa.Boolean, nullable=False),
)

course_items = sa.Table(
    "course_items",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("program_id", sa.Uuid, nullable=False),
    sa.Column("day_offset", sa.Integer, nullable=False),
    sa.Column("workout_id", sa.Uuid, sa.ForeignKey("workouts.id"), nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.ForeignKeyConstraint(
        ["program_id", "day_offset"],
        ["course_days.program_id", "course_days.day_offset"],
        ondelete="CASCADE",
    ),
    sa.UniqueConstraint("program_id", "day_offset", "position"),
)

# Projection of commerce.plan.priced.v1: one course plan per course, newest version wins.
plan_projection = sa.Table(
    "plan_projection",
    metadata,
    sa.Column("course_id", sa.Uuid, primary_key=True),
    sa.Column("plan_id", sa.Uuid, nullable=False),
    sa.Column("organization_id", sa.Uuid, nullable=False),
    sa.Column("price_in_cents", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)
