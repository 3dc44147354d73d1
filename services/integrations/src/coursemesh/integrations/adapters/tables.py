"""The integrations service's tables, all in the ``integrations`` schema: the endpoints
organizations register, the deliveries owed to them and every attempt, plus the projections
the service needs (catalog's memberships for staff checks, custom-gen's course owners)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from coursemesh.chassis.tables import spine_tables

SCHEMA = "integrations"
metadata = sa.MetaData(schema=SCHEMA)
spine = spine_tables(metadata)

_TZ = sa.DateTime(timezone=True)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("organization_id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("role", sa.Text),
    sa.Column("is_staff", sa.Boolean, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

# custom-gen's ready/updated events name no organization: its requested event does, first.
custom_course_owners = sa.Table(
    "custom_course_owners",
    metadata,
    sa.Column("custom_course_id", sa.Uuid, primary_key=True),
    sa.Column("organization_id", sa.Uuid, nullable=False),
)

endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("organization_id", sa.Uuid, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("event_types", ARRAY(sa.Text), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("disabled_reason", sa.Text),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("previous_secret", sa.Text),
    sa.Column("previous_secret_expires_at", _TZ),
    sa.Column("created_at", _TZ, nullable=False),
    sa.Column("updated_at", _TZ, nullable=False),
    sa.Index("ix_endpoints_organization_id", "organization_id"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "endpoint_id",
        sa.Uuid,
        sa.ForeignKey(f"{SCHEMA}.endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("organization_id", sa.Uuid, nullable=False),
    sa.Column("webhook_id", sa.Text, nullable=False),
    # The internal event it was made from (None: a test event): one delivery per endpoint each.
    sa.Column("event_id", sa.Uuid),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # exactly the bytes signed and sent
    sa.Column("status", sa.Text, nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", _TZ),
    sa.Column("claimed_until", _TZ),
    sa.Column("last_response_status", sa.Integer),
    sa.Column("last_latency_ms", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", _TZ, nullable=False),
    sa.Column("updated_at", _TZ, nullable=False),
    sa.UniqueConstraint("endpoint_id", "event_id", name="uq_deliveries_endpoint_event"),
    sa.Index("ix_deliveries_endpoint_created", "endpoint_id", "created_at"),
    sa.Index("ix_deliveries_created", "created_at"),
    # Each endpoint's first due delivery, and whether one is in flight (the sender's claim).
    sa.Index(
        "ix_deliveries_endpoint_due",
        "endpoint_id",
        "next_attempt_at",
        postgresql_where=sa.text("status = 'pending'"),
    ),
    sa.Index(
        "ix_deliveries_endpoint_claimed",
        "endpoint_id",
        "claimed_until",
        postgresql_where=sa.text("claimed_until IS NOT NULL"),
    ),
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "delivery_id",
        sa.Uuid,
        sa.ForeignKey(f"{SCHEMA}.deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", _TZ, nullable=False),
    sa.Column("response_status", sa.Integer),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("response_excerpt", sa.Text),
    sa.Index("ix_delivery_attempts_delivery_id", "delivery_id"),
)
