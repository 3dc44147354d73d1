"""The custom-gen service's tables, all in the ``customgen`` schema."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.types import UserDefinedType

from coursemesh.chassis.tables import spine_tables

SCHEMA = "customgen"
metadata = sa.MetaData(schema=SCHEMA)
spine = spine_tables(metadata)


class CanonicalJson(UserDefinedType[str]):
    """A ``json`` column written and read as text.

    ``json`` (unlike ``jsonb``) keeps the exact text it is given, so the stored bytes are the
    canonical JSON the checksum was taken over, and a CHECK constraint can hold
    ``checksum = md5(data::text)``. Reads return the text untouched (the handshake passes it on
    without decoding it).
    """

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "JSON"

    def bind_expression(self, bindvalue: Any) -> Any:
        return sa.cast(sa.cast(bindvalue, sa.Text), pg.JSON)

    def column_expression(self, colexpr: Any) -> Any:
        return sa.cast(colexpr, sa.Text)


def _now() -> Any:
    return sa.func.now()


TZ = sa.DateTime(timezone=True)

purchases = sa.Table(
    "custom_course_purchases",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("organization_id", sa.Uuid, nullable=False),
    sa.Column("offer_id", sa.Uuid, nullable=False),
    sa.Column("course_code", sa.Text, nullable=False),
    sa.Column("offer_title", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # awaiting_intake | submitted
    sa.Column("custom_course_id", sa.Uuid),
    sa.Column("purchased_at", TZ, nullable=False),
    sa.Column("created_at", TZ, nullable=False, server_default=_now()),
    sa.Column("updated_at", TZ, nullable=False, server_default=_now()),
    sa.Index("purchases_by_user", "user_id"),
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

custom_courses = sa.Table(
    "custom_courses",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("organization_id", sa.Uuid, nullable=False),
    sa.Column("purchase_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("course_code", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("data", CanonicalJson, nullable=False),
    sa.Column("checksum", sa.Text, nullable=False),
    sa.Column("file_size_bytes", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # generating | ready | failed
    sa.Column("version", sa.Integer, nullable=False),  # aggregate version of its events
    sa.Column("created_at", TZ, nullable=False, server_default=_now()),
    sa.Column("updated_at", TZ, nullable=False, server_default=_now()),
    sa.Index("custom_courses_by_user", "user_id"),
    sa.Index("custom_courses_by_org", "organization_id", "created_at"),
)

generation_jobs = sa.Table(
    "generation_jobs",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("custom_course_id", sa.Uuid, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # generate | regenerate
    sa.Column("regen_request_id", sa.Uuid),
    sa.Column("step", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status", sa.Text, nullable=False),  # pending | done | failed
    sa.Column("state", pg.JSONB, nullable=False, server_default="{}"),
    sa.Column("next_attempt_at", TZ, nullable=False, server_default=_now()),
    sa.Column("last_error", sa.Text),
    sa.Column("failed_step", sa.Text),
    sa.Column("created_at", TZ, nullable=False, server_default=_now()),
    sa.Column("updated_at", TZ, nullable=False, server_default=_now()),
    sa.Index("jobs_due", "next_attempt_at", postgresql_where=sa.text("status = 'pending'")),
    sa.Index("jobs_by_course", "custom_course_id"),
)

regen_requests = sa.Table(
    "regen_requests",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("custom_course_id", sa.Uuid, nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("organization_id", sa.Uuid, nullable=False),
    sa.Column("audio_id", sa.Uuid, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # open|approved|rejected|completed|failed
    sa.Column("decided_by", sa.Text),
    sa.Column("decision_note", sa.Text),
    sa.Column("decided_at", TZ),
    sa.Column("completed_at", TZ),
    sa.Column("created_at", TZ, nullable=False, server_default=_now()),
    sa.Index(
        "one_open_regen_per_audio",
        "custom_course_id",
        "audio_id",
        unique=True,
        postgresql_where=sa.text("status IN ('open', 'approved')"),
    ),
    sa.Index("regen_by_user", "user_id", "created_at"),
    sa.Index("regen_by_org", "organization_id", "created_at"),
)
