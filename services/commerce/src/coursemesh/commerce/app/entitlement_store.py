"""Loading and saving entitlements; every saved transition gets its audit row and its event."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from coursemesh.chassis.db import UnitOfWork
from coursemesh.commerce.adapters.tables import entitlement_transitions, entitlements
from coursemesh.commerce.app.ports import Publisher
from coursemesh.commerce.domain.entitlements import Cause, Entitlement, Status, Transition
from coursemesh.contracts.commerce import EntitlementChanged


def from_row(row: Mapping[Any, Any], prefix: str = "") -> Entitlement:
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
    )


def _values(ent: Entitlement) -> dict[str, Any]:
    return {
        "status": ent.status,
        "access_revoked_at": ent.access_revoked_at,
        "source_payment_transaction_id": ent.source_payment_transaction_id,
        "membership_id": ent.membership_id,
        "buyer_email": ent.buyer_email,
        "version": ent.version,
        "status_changed_at": ent.status_changed_at,
    }


async def lock(uow: UnitOfWork, **where: Any) -> Entitlement | None:
    query = sa.select(entitlements).with_for_update()
    for column, value in where.items():
        query = query.where(entitlements.c[column] == value)
    row = (await uow.session.execute(query)).mappings().first()
    return from_row(row) if row else None


async def insert_new(uow: UnitOfWork, ent: Entitlement) -> bool:
    """Insert a new row; False when a concurrent checkout inserted (user, course) first."""
    result = await uow.session.execute(
        pg_insert(entitlements)
        .values(
            id=ent.id,
            user_id=ent.user_id,
            course_id=ent.course_id,
            organization_id=ent.organization_id,
            **_values(ent),
        )
        .on_conflict_do_nothing(index_elements=["user_id", "course_id"])
        .returning(entitlements.c.id)
    )
    return result.first() is not None


async def update(uow: UnitOfWork, ent: Entitlement) -> None:
    await uow.session.execute(
        sa.update(entitlements).where(entitlements.c.id == ent.id).values(**_values(ent))
    )


async def record(uow: UnitOfWork, t: Transition) -> None:
    """Audit row + ``entitlement.changed`` for a transition already saved."""
    ent = t.entitlement
    await uow.session.execute(
        sa.insert(entitlement_transitions).values(
            entitlement_id=ent.id,
            from_status=t.previous_status,
            to_status=ent.status,
            cause=t.cause,
            actor=t.actor,
            reason=t.reason,
            at=t.at,
        )
    )
    publish_state(uow, ent, previous_status=t.previous_status, cause=t.cause, reason=t.reason)


def publish_state(
    uow: Publisher,
    ent: Entitlement,
    *,
    previous_status: Status | None,
    cause: Cause,
    reason: str | None,
) -> None:
    uow.publish(
        EntitlementChanged(
            entitlement_id=ent.id,
            user_id=ent.user_id,
            course_id=ent.course_id,
            organization_id=ent.organization_id,
            status=ent.status,
            access_revoked_at=ent.access_revoked_at,
            source_payment_transaction_id=ent.source_payment_transaction_id,
            membership_id=ent.membership_id,
            previous_status=previous_status,
            cause=cause,
            reason=reason,
            changed_at=ent.status_changed_at,
        ),
        aggregate_id=ent.id,
        aggregate_version=ent.version,
    )


def new_id() -> uuid.UUID:
    return uuid.uuid4()
