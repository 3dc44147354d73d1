"""The free course checkout on the driver: one read, then one statement that writes every row,
the outbox rows included. Same rules, rows and events as the general path in ``checkout``,
which still answers paid courses, Idempotency-Key retries, reopened rows and the rare checkout
that races another one of the same buyer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from coursemesh.chassis.auth import Principal
from coursemesh.chassis.db import Database
from coursemesh.chassis.errors import BadRequest, NotFound
from coursemesh.commerce.adapters import checkout_sql
from coursemesh.commerce.adapters.checkout_sql import CheckoutFacts, LeadWrite
from coursemesh.commerce.app import entitlement_store as store
from coursemesh.commerce.app.leads import publish_lead_created
from coursemesh.commerce.domain.entitlements import open_for_checkout
from coursemesh.commerce.domain.pricing import is_free


def _available(facts: CheckoutFacts | None) -> tuple[CheckoutFacts, int]:
    """The seed's first checks, as the general path makes them: a published course (404) with
    an active plan (400). Returns the facts and the plan's price."""
    if facts is None or facts.status != "published":
        raise NotFound("This course is not available", code="COURSE_NOT_FOUND")
    if facts.price_in_cents is None:
        raise BadRequest("This course has no active plan", code="NO_ACTIVE_PLAN")
    return facts, facts.price_in_cents


def _lead_write(facts: CheckoutFacts, buyer: Principal) -> LeadWrite | None:
    """Branch B (no membership of the seller): the lead rows still missing, if any."""
    if facts.membership_id is not None or facts.linked:
        return None
    return LeadWrite(
        lead_id=facts.lead_id or uuid.uuid4(),
        email=buyer.email,
        source="course_purchase",
        new=facts.lead_id is None,
    )


async def checkout_free_course(
    db: Database, course_id: uuid.UUID, buyer: Principal
) -> uuid.UUID | None:
    """The entitlement id of a free checkout; None when the general path must answer (a paid
    course, a pending or revoked row to reopen, a race). Raises what the general path raises:
    404, 400, 409 already owned."""
    now = datetime.now(UTC)
    async with db.single_statement() as write:
        facts, price = _available(await checkout_sql.read_facts(write.driver, course_id, buyer.sub))
        if not is_free(price):
            return None
        t = open_for_checkout(  # COURSE_ALREADY_OWNED for an active row
            facts.entitlement,
            new_id=uuid.uuid4(),
            user_id=buyer.sub,
            course_id=course_id,
            organization_id=facts.organization_id,
            membership_id=facts.membership_id,
            buyer_email=buyer.email,
            free=True,
            now=now,
        )
        if facts.entitlement is not None:
            return None  # reopening a row: rare, and the general path locks it first
        lead = _lead_write(facts, buyer)
        if lead is not None:
            publish_lead_created(
                write, lead.lead_id, facts.organization_id, buyer, lead.source, now
            )
        store.publish_state(
            write, t.entitlement, previous_status=None, cause=t.cause, reason=t.reason
        )
        if not await checkout_sql.save_new_free_checkout(write, t, lead):
            return None  # nothing written; the general path locks and decides again
    return t.entitlement.id
