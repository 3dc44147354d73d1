"""A free course checkout's statements on the asyncpg driver (issue 4: it is the busiest
write). Through SQLAlchemy its ~10 statements cost ~0.5 ms of CPU each; here the read is one
statement and the whole write another, with no compilation and no transaction round trips."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from coursemesh.chassis.db import SingleStatement, statement_outbox
from coursemesh.commerce.adapters.tables import SCHEMA
from coursemesh.commerce.app.entitlement_store import from_row
from coursemesh.commerce.domain.entitlements import Entitlement, Transition
from coursemesh.contracts.types import LeadSource

# Everything a free checkout decides on, in one statement outside any transaction: the
# course, its active plan's price, the buyer's membership of the seller, their lead and its
# link to the seller, and their entitlement to the course. The write re-checks what it relies
# on.
_FACTS = """
SELECT c.status, c.organization_id, p.price_in_cents, m.membership_id,
       l.id AS lead_id, ol.lead_id IS NOT NULL AS linked,
       e.id AS e_id, e.user_id AS e_user_id, e.course_id AS e_course_id,
       e.organization_id AS e_organization_id, e.status AS e_status,
       e.access_revoked_at AS e_access_revoked_at,
       e.source_payment_transaction_id AS e_source_payment_transaction_id,
       e.membership_id AS e_membership_id, e.buyer_email AS e_buyer_email,
       e.version AS e_version, e.status_changed_at AS e_status_changed_at
FROM courses c
LEFT JOIN plans p ON p.course_id = c.id AND p.type = 'course' AND p.is_active
LEFT JOIN memberships m
       ON m.organization_id = c.organization_id AND m.user_id = $2 AND m.role IS NOT NULL
LEFT JOIN leads l ON l.user_id = $2
LEFT JOIN organization_leads ol ON ol.organization_id = c.organization_id AND ol.lead_id = l.id
LEFT JOIN course_entitlements e ON e.user_id = $2 AND e.course_id = c.id
WHERE c.id = $1
"""

# A free checkout's rows, outbox rows and NOTIFY (where relays publish) in one statement,
# outside any transaction (atomic by itself: no BEGIN/COMMIT round trips): the lead (if new) and
# its link to the seller (branch B), the new entitlement, its audit row. Each lead part is
# switched on by a flag, so there is one prepared statement. Plain INSERTs: a row a concurrent
# checkout of the same buyer wrote since the read is a unique violation, which undoes the whole
# statement. The final SELECT reads the parts in the general path's lock order (lead, link,
# entitlement), so two checkouts of one buyer wait for each other instead of deadlocking.
_OUTBOX = statement_outbox(SCHEMA, first_param=21)
_SAVE_FREE = f"""
WITH lead AS (
    INSERT INTO leads (id, user_id, email, source)
    SELECT $1::uuid, $2::text, $3::text, $4::text WHERE $5::bool
    RETURNING 1
), link AS (
    INSERT INTO organization_leads (organization_id, lead_id, membership_id, source)
    SELECT $6::uuid, $1::uuid, NULL, $4::text WHERE $7::bool
    RETURNING 1
), saved AS (
    INSERT INTO course_entitlements (
        id, user_id, course_id, organization_id, status, access_revoked_at,
        source_payment_transaction_id, membership_id, buyer_email, version, status_changed_at
    )
    VALUES ($8, $2, $9, $6, $10, $11, $12, $13, $14, $15, $16)
    RETURNING 1
), audit AS (
    INSERT INTO entitlement_transitions
        (entitlement_id, from_status, to_status, cause, actor, reason, at)
    VALUES ($8, $17, $10, $18, $19, $20, $16)
    RETURNING 1
), {_OUTBOX.cte}
SELECT (SELECT count(*) FROM lead), (SELECT count(*) FROM link), (SELECT count(*) FROM saved),
       (SELECT count(*) FROM audit), {_OUTBOX.tail}
"""


@dataclass(frozen=True, slots=True)
class CheckoutFacts:
    status: str
    organization_id: uuid.UUID
    price_in_cents: int | None  # None: no active plan
    membership_id: uuid.UUID | None
    lead_id: uuid.UUID | None
    linked: bool  # the buyer's lead is linked to the seller
    entitlement: Entitlement | None


@dataclass(frozen=True, slots=True)
class LeadWrite:
    """Branch B's rows: the buyer's link to the seller, and their lead too when ``new``."""

    lead_id: uuid.UUID
    email: str | None
    source: LeadSource
    new: bool


async def read_facts(conn: Any, course_id: uuid.UUID, user_id: str) -> CheckoutFacts | None:
    row = await conn.fetchrow(_FACTS, course_id, user_id)
    if row is None:
        return None
    return CheckoutFacts(
        status=row["status"],
        organization_id=row["organization_id"],
        price_in_cents=row["price_in_cents"],
        membership_id=row["membership_id"],
        lead_id=row["lead_id"],
        linked=row["linked"],
        entitlement=None if row["e_id"] is None else from_row(row, prefix="e_"),
    )


async def save_new_free_checkout(
    write: SingleStatement, t: Transition, lead: LeadWrite | None
) -> bool:
    """Write a new entitlement's transition (and the lead rows) with ``events``; False, and
    nothing written, when a concurrent checkout of the same buyer wrote one of them first (the
    only unique violation this statement can meet: its other keys are fresh ids)."""
    ent = t.entitlement
    try:
        await write.execute(
            _SAVE_FREE,
            lead.lead_id if lead else None,
            ent.user_id,
            lead.email if lead else None,
            lead.source if lead else None,
            lead is not None and lead.new,
            ent.organization_id,
            lead is not None,
            ent.id,
            ent.course_id,
            ent.status,
            ent.access_revoked_at,
            ent.source_payment_transaction_id,
            ent.membership_id,
            ent.buyer_email,
            ent.version,
            ent.status_changed_at,
            t.previous_status,
            t.cause,
            t.actor,
            t.reason,
        )
    except asyncpg.UniqueViolationError:
        return False
    return True
