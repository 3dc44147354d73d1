"""Staff use cases of an organization: price, revoke, custom course offers, reads.

Authorization: staff = owner/admin/trainer membership of the org (projected from catalog). A
caller who is not staff of the org gets 404 for everything under ``/organizations/:orgId``, so
neither the org's resources nor their ids can be probed from outside.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.chassis.errors import Conflict, NotFound
from coursemesh.chassis.memberships import is_staff
from coursemesh.commerce.adapters.tables import (
    courses,
    custom_course_offers,
    entitlements,
    leads,
    memberships,
    organization_leads,
    organizations,
    plans,
)
from coursemesh.commerce.app import entitlement_store as store
from coursemesh.commerce.domain.entitlements import Entitlement, transition
from coursemesh.contracts.commerce import PlanPriced


async def require_staff(uow: UnitOfWork, organization_id: uuid.UUID, user_id: str) -> None:
    if not await is_staff(uow.session, memberships, organization_id, user_id):
        raise NotFound("Not found", code="NOT_FOUND")


async def _require_course(
    uow: UnitOfWork, organization_id: uuid.UUID, course_id: uuid.UUID
) -> None:
    """The course is one of the org's (any status) in commerce's projection."""
    course_org = (
        await uow.session.execute(
            sa.select(courses.c.organization_id).where(courses.c.id == course_id)
        )
    ).scalar_one_or_none()
    if course_org != organization_id:
        raise NotFound("No such course in this organization", code="COURSE_NOT_FOUND")


async def set_price(
    db: Database,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    user_id: str,
    price_in_cents: int,
    is_active: bool,
) -> dict[str, Any]:
    """Upsert the course's plan (type 'course', keyed on the course, currency from the org)."""
    async with db.unit_of_work() as uow:
        await require_staff(uow, organization_id, user_id)
        await _require_course(uow, organization_id, course_id)
        currency = (
            await uow.session.execute(
                sa.select(organizations.c.currency).where(organizations.c.id == organization_id)
            )
        ).scalar_one_or_none()
        if currency is None:
            raise Conflict(
                "The organization's profile has not reached commerce yet; retry shortly",
                code="ORGANIZATION_NOT_SYNCED",
            )
        insert = pg_insert(plans).values(
            id=uuid.uuid4(),
            course_id=course_id,
            type="course",
            organization_id=organization_id,
            price_in_cents=price_in_cents,
            currency=currency,
            is_active=is_active,
            version=1,
        )
        row = (
            (
                await uow.session.execute(
                    insert.on_conflict_do_update(
                        index_elements=[plans.c.course_id, plans.c.type],
                        set_={
                            "price_in_cents": insert.excluded.price_in_cents,
                            "currency": insert.excluded.currency,
                            "is_active": insert.excluded.is_active,
                            "version": plans.c.version + 1,
                        },
                    ).returning(plans)
                )
            )
            .mappings()
            .one()
        )
        uow.publish(
            PlanPriced(
                plan_id=row["id"],
                course_id=course_id,
                organization_id=organization_id,
                price_in_cents=row["price_in_cents"],
                currency=row["currency"],
                is_active=row["is_active"],
            ),
            aggregate_id=row["id"],
            aggregate_version=row["version"],
        )
        return dict(row)


async def revoke_entitlement(
    db: Database, organization_id: uuid.UUID, entitlement_id: uuid.UUID, user_id: str, reason: str
) -> Entitlement:
    async with db.unit_of_work() as uow:
        await require_staff(uow, organization_id, user_id)
        ent = await store.lock(uow, id=entitlement_id, organization_id=organization_id)
        if ent is None:
            raise NotFound("No such entitlement", code="ENTITLEMENT_NOT_FOUND")
        t = transition(
            ent, "staff_revoked", actor=f"user:{user_id}", now=datetime.now(UTC), reason=reason
        )
        await store.update(uow, t.entitlement)
        await store.record(uow, t)
        return t.entitlement


async def create_offer(
    db: Database,
    organization_id: uuid.UUID,
    user_id: str,
    code: str,
    title: str,
    price_in_cents: int,
) -> dict[str, Any]:
    async with db.unit_of_work() as uow:
        await require_staff(uow, organization_id, user_id)
        currency = (
            await uow.session.execute(
                sa.select(organizations.c.currency).where(organizations.c.id == organization_id)
            )
        ).scalar_one_or_none()
        if currency is None:
            raise Conflict(
                "The organization's profile has not reached commerce yet; retry shortly",
                code="ORGANIZATION_NOT_SYNCED",
            )
        row = (
            (
                await uow.session.execute(
                    pg_insert(custom_course_offers)
                    .values(
                        id=uuid.uuid4(),
                        organization_id=organization_id,
                        code=code,
                        title=title,
                        price_in_cents=price_in_cents,
                        currency=currency,
                    )
                    .on_conflict_do_nothing(index_elements=["code"])
                    .returning(custom_course_offers)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise Conflict("This offer code is taken", code="OFFER_CODE_TAKEN")
        return dict(row)


async def course_entitlements(
    db: Database,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    user_id: str,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    where = (
        entitlements.c.organization_id == organization_id,
        entitlements.c.course_id == course_id,
    )
    async with db.unit_of_work() as uow:
        await require_staff(uow, organization_id, user_id)
        await _require_course(uow, organization_id, course_id)
        total = (
            await uow.session.execute(
                sa.select(sa.func.count()).select_from(entitlements).where(*where)
            )
        ).scalar_one()
        rows = (
            await uow.session.execute(
                sa.select(entitlements)
                .where(*where)
                .order_by(entitlements.c.created_at, entitlements.c.id)
                .limit(limit)
                .offset(offset)
            )
        ).mappings()
        return [dict(r) for r in rows], int(total)


async def organization_lead_list(
    db: Database, organization_id: uuid.UUID, user_id: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where = organization_leads.c.organization_id == organization_id
    async with db.unit_of_work() as uow:
        await require_staff(uow, organization_id, user_id)
        total = (
            await uow.session.execute(
                sa.select(sa.func.count()).select_from(organization_leads).where(where)
            )
        ).scalar_one()
        rows = (
            await uow.session.execute(
                sa.select(
                    leads.c.id,
                    leads.c.user_id,
                    leads.c.email,
                    organization_leads.c.source,
                    organization_leads.c.membership_id,
                    organization_leads.c.created_at,
                )
                .join(leads, leads.c.id == organization_leads.c.lead_id)
                .where(where)
                .order_by(organization_leads.c.created_at, leads.c.id)
                .limit(limit)
                .offset(offset)
            )
        ).mappings()
        return [dict(r) for r in rows], int(total)
