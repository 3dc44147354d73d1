"""The event-spine tables every service has in its own schema: outbox and inbox."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID


@dataclass(frozen=True)
class SpineTables:
    outbox: sa.Table
    inbox: sa.Table


def spine_tables(metadata: sa.MetaData) -> SpineTables:
    """Declare outbox and inbox in ``metadata`` (whose ``schema`` is the service's schema)."""
    outbox = sa.Table(
        "outbox",
        metadata,
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("aggregate_id", sa.Text, nullable=False),
        sa.Column("aggregate_version", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("headers", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text),
        sa.Index(
            "ix_outbox_unpublished",
            "seq",
            postgresql_where=sa.text("published_at IS NULL"),
        ),
        extend_existing=True,
    )
    inbox = sa.Table(
        "inbox",
        metadata,
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        extend_existing=True,
    )
    return SpineTables(outbox=outbox, inbox=inbox)


def create_spine_tables(schema: str) -> None:
    """Alembic helper for a service's first migration: creates outbox and inbox as declared above.

    A later change to these tables must come with its own migration step in every service.
    """
    from alembic import op

    tables = spine_tables(sa.MetaData(schema=schema))
    bind = op.get_bind()
    tables.outbox.create(bind)
    tables.inbox.create(bind)
