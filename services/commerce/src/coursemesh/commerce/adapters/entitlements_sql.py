"""Entitlements on the driver, in any transaction (``await tx.driver()``): the repository of
the use cases that change an existing entitlement (webhooks, staff revoke, the sweeper)."""

from __future__ import annotations

import uuid

from coursemesh.chassis.transaction import Driver, Record, Transaction
from coursemesh.commerce.domain.entitlements import Entitlement, Transition
from coursemesh.commerce.domain.events import entitlement_events, transition_events

COLUMNS = (
    "id, user_id, course_id, organization_id, status, access_revoked_at,"
    " source_payment_transaction_id, membership_id, buyer_email, version, status_changed_at,"
    " access_ends_at"
)

_LOCK = f"SELECT {COLUMNS} FROM course_entitlements WHERE id = $1 FOR UPDATE"
_LOCK_IN_ORG = (
    f"SELECT {COLUMNS} FROM course_entitlements WHERE id = $1 AND organization_id = $2 FOR UPDATE"
)
_UPDATE = """
UPDATE course_entitlements
   SET status = $2, access_revoked_at = $3, source_payment_transaction_id = $4,
       membership_id = $5, buyer_email = $6, version = $7, status_changed_at = $8,
       access_ends_at = $9
 WHERE id = $1
"""
_INSERT = f"""
INSERT INTO course_entitlements ({COLUMNS})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (user_id, course_id) DO NOTHING
RETURNING id
"""
_AUDIT = """
INSERT INTO entitlement_transitions
    (entitlement_id, from_status, to_status, cause, actor, reason, at, payment_transaction_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""


def entitlement_of(row: Record, prefix: str = "") -> Entitlement:
    """The entitlement in ``row``, its columns named ``prefix + column`` (a join's aliases)."""
    return Entitlement(
        id=row[prefix + "id"],
        user_id=row[prefix + "user_id"],
        course_id=row[prefix + "course_id"],
        organization_id=row[prefix + "organization_id"],
        status=row[prefix + "status"],
        access_revoked_at=row[prefix + "access_revoked_at"],
        source_payment_transaction_id=row[prefix + "source_payment_transaction_id"],
        membership_id=row[prefix + "membership_id"],
        buyer_email=row[prefix + "buyer_email"],
        version=row[prefix + "version"],
        status_changed_at=row[prefix + "status_changed_at"],
        access_ends_at=row[prefix + "access_ends_at"],
    )


async def insert(driver: Driver, ent: Entitlement) -> bool:
    """A new entitlement row; False when the user has one for the course already."""
    inserted = await driver.fetchval(
        _INSERT,
        ent.id,
        ent.user_id,
        ent.course_id,
        ent.organization_id,
        ent.status,
        ent.access_revoked_at,
        ent.source_payment_transaction_id,
        ent.membership_id,
        ent.buyer_email,
        ent.version,
        ent.status_changed_at,
        ent.access_ends_at,
    )
    return inserted is not None


async def update(driver: Driver, ent: Entitlement) -> None:
    await driver.execute(
        _UPDATE,
        ent.id,
        ent.status,
        ent.access_revoked_at,
        ent.source_payment_transaction_id,
        ent.membership_id,
        ent.buyer_email,
        ent.version,
        ent.status_changed_at,
        ent.access_ends_at,
    )


async def audit(driver: Driver, t: Transition) -> None:
    """The transition's ``entitlement_transitions`` row."""
    ent = t.entitlement
    await driver.execute(
        _AUDIT,
        ent.id,
        t.previous_status,
        ent.status,
        t.cause,
        t.actor,
        t.reason,
        t.at,
        t.payment_transaction_id,
    )


class DriverEntitlements:
    """:class:`~coursemesh.commerce.app.ports.EntitlementRepository` in ``tx``."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def lock(
        self, entitlement_id: uuid.UUID, organization_id: uuid.UUID | None = None
    ) -> Entitlement | None:
        driver = await self._tx.driver()
        if organization_id is None:
            row = await driver.fetchrow(_LOCK, entitlement_id)
        else:
            row = await driver.fetchrow(_LOCK_IN_ORG, entitlement_id, organization_id)
        return None if row is None else entitlement_of(row)

    async def save(self, t: Transition) -> None:
        driver = await self._tx.driver()
        await update(driver, t.entitlement)
        await audit(driver, t)
        for event in transition_events(t):
            self._tx.publish(
                event, aggregate_id=t.entitlement.id, aggregate_version=t.entitlement.version
            )

    async def refresh(self, ent: Entitlement) -> None:
        await update(await self._tx.driver(), ent)
        for event in entitlement_events(
            ent, previous_status="active", cause="payment_completed", reason=None
        ):
            self._tx.publish(event, aggregate_id=ent.id, aggregate_version=ent.version)
