"""Checkout: the seed's purchase flow for courses, and the same flow for custom course offers."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from coursemesh.chassis.auth import Principal
from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.chassis.errors import BadRequest, NotFound, Unprocessable
from coursemesh.commerce.adapters.tables import (
    courses,
    custom_course_offers,
    custom_course_purchases,
    idempotency_keys,
    leads,
    memberships,
    organization_leads,
    organizations,
    payment_transactions,
    plans,
)
from coursemesh.commerce.app import entitlement_store as store
from coursemesh.commerce.app.free_checkout import checkout_free_course
from coursemesh.commerce.app.leads import publish_lead_created
from coursemesh.commerce.app.ports import (
    META_ENTITLEMENT,
    META_PURCHASE,
    META_TRANSACTION,
    HostedPaymentRequest,
    PaymentProvider,
)
from coursemesh.commerce.domain.entitlements import open_for_checkout
from coursemesh.commerce.domain.pricing import is_free
from coursemesh.contracts.commerce import CustomCoursePurchased
from coursemesh.contracts.types import LeadSource


class CheckoutResponse(msgspec.Struct, rename="camel", omit_defaults=False):
    payment_page_url: str | None
    entitlement_id: uuid.UUID | None = None
    purchase_id: uuid.UUID | None = None


@dataclass(frozen=True)
class CheckoutContext:
    db: Database
    provider: PaymentProvider
    checkout_ttl: timedelta


# --- idempotency --------------------------------------------------------------------------


async def idempotent(
    uow: UnitOfWork,
    user_id: str,
    key: str | None,
    fingerprint: str,
    run: Callable[[], Awaitable[CheckoutResponse]],
) -> CheckoutResponse:
    """With an ``Idempotency-Key``, the first response is stored with the effects it describes
    (one transaction) and returned again for every retry; a transaction-scoped advisory lock
    makes a concurrent retry wait for the first to finish."""
    if key is None:
        return await run()
    lock_id = int.from_bytes(
        hashlib.sha256(f"{user_id}\0{key}".encode()).digest()[:8], "big", signed=True
    )
    await uow.session.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_id)))
    stored = (
        (
            await uow.session.execute(
                sa.select(idempotency_keys).where(
                    idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key
                )
            )
        )
        .mappings()
        .first()
    )
    if stored is not None:
        if stored["request_fingerprint"] != fingerprint:
            raise Unprocessable(
                "This Idempotency-Key was used for another request", code="IDEMPOTENCY_KEY_REUSED"
            )
        return msgspec.convert(stored["response"], CheckoutResponse)
    response = await run()
    await uow.session.execute(
        sa.insert(idempotency_keys).values(
            user_id=user_id,
            key=key,
            request_fingerprint=fingerprint,
            status_code=201,
            response=msgspec.to_builtins(response),
        )
    )
    return response


# --- shared steps -------------------------------------------------------------------------


async def _seller(uow: UnitOfWork, organization_id: uuid.UUID) -> Mapping[Any, Any] | None:
    query = sa.select(organizations).where(organizations.c.id == organization_id)
    return (await uow.session.execute(query)).mappings().first()


async def _membership_id(
    uow: UnitOfWork, organization_id: uuid.UUID, user_id: str
) -> uuid.UUID | None:
    query = sa.select(memberships.c.membership_id).where(
        memberships.c.organization_id == organization_id,
        memberships.c.user_id == user_id,
        memberships.c.role.is_not(None),
    )
    return (await uow.session.execute(query)).scalar_one_or_none()


async def attach_lead(
    uow: UnitOfWork, organization_id: uuid.UUID, buyer: Principal, source: LeadSource, now: datetime
) -> None:
    """Branch B: create or reuse the buyer's lead and link it to the seller org (membership
    null). ``lead.created`` is published when the link is new."""
    # Two statements, not one insert-or-read CTE: a statement's snapshot predates a concurrent
    # checkout's row that its ON CONFLICT waited for, so a CTE could read nothing.
    await uow.session.execute(
        pg_insert(leads)
        .values(id=uuid.uuid4(), user_id=buyer.sub, email=buyer.email, source=source)
        .on_conflict_do_nothing(index_elements=["user_id"])
    )
    lead_id = (
        await uow.session.execute(sa.select(leads.c.id).where(leads.c.user_id == buyer.sub))
    ).scalar_one()
    linked = await uow.session.execute(
        pg_insert(organization_leads)
        .values(organization_id=organization_id, lead_id=lead_id, membership_id=None, source=source)
        .on_conflict_do_nothing()
        .returning(organization_leads.c.lead_id)
    )
    if linked.first() is not None:
        publish_lead_created(uow, lead_id, organization_id, buyer, source, now)


async def _open_payment(
    uow: UnitOfWork,
    ctx: CheckoutContext,
    *,
    organization_id: uuid.UUID,
    buyer: Principal,
    amount: int,
    currency: str,
    description: str,
    link: dict[str, Any],
    now: datetime,
) -> str:
    """A payment_transactions row and a hosted payment at the provider; returns the page URL."""
    transaction_id = uuid.uuid4()
    metadata = {META_TRANSACTION: str(transaction_id)}
    if link.get("entitlement_id"):
        metadata[META_ENTITLEMENT] = str(link["entitlement_id"])
    if link.get("custom_course_purchase_id"):
        metadata[META_PURCHASE] = str(link["custom_course_purchase_id"])
    await uow.session.execute(
        sa.insert(payment_transactions).values(
            id=transaction_id,
            organization_id=organization_id,
            user_id=buyer.sub,
            amount_in_cents=amount,
            currency=currency,
            provider=ctx.provider.name,
            status="pending",
            metadata=metadata,
            buyer_email=buyer.email,
            description=description,
            version=1,
            **link,
        )
    )
    seller = await _seller(uow, organization_id)
    hosted = await ctx.provider.create_hosted_payment(
        uow.session,
        HostedPaymentRequest(
            transaction_id=transaction_id,
            organization_id=organization_id,
            seller_name=seller["name"] if seller else "",
            seller_logo_url=seller["logo_url"] if seller else None,
            description=description,
            amount_in_cents=amount,
            currency=currency,
            buyer_email=buyer.email,
            metadata=metadata,
            expires_at=now + ctx.checkout_ttl,
        ),
    )
    await uow.session.execute(
        sa.update(payment_transactions)
        .where(payment_transactions.c.id == transaction_id)
        .values(provider_transaction_id=hosted.provider_transaction_id)
    )
    return hosted.payment_page_url


# --- course checkout ----------------------------------------------------------------------


async def checkout_course(
    ctx: CheckoutContext, course_id: uuid.UUID, buyer: Principal, idempotency_key: str | None
) -> CheckoutResponse:
    if idempotency_key is None:
        # The common case, a free course, on the driver (see free_checkout).
        entitlement_id = await checkout_free_course(ctx.db, course_id, buyer)
        if entitlement_id is not None:
            return CheckoutResponse(payment_page_url=None, entitlement_id=entitlement_id)
    now = datetime.now(UTC)
    async with ctx.db.unit_of_work() as uow:

        async def run() -> CheckoutResponse:
            return await _checkout_course(uow, ctx, course_id, buyer, now)

        return await idempotent(uow, buyer.sub, idempotency_key, f"course:{course_id}", run)


async def _checkout_course(
    uow: UnitOfWork, ctx: CheckoutContext, course_id: uuid.UUID, buyer: Principal, now: datetime
) -> CheckoutResponse:
    # Course, its active plan and the buyer's membership of the seller in one round trip.
    row = (
        (
            await uow.session.execute(
                sa.select(
                    courses.c.status,
                    courses.c.organization_id,
                    courses.c.name,
                    plans.c.id.label("plan_id"),
                    plans.c.price_in_cents,
                    plans.c.currency,
                    memberships.c.membership_id,
                )
                .select_from(courses)
                .outerjoin(
                    plans,
                    sa.and_(
                        plans.c.course_id == courses.c.id,
                        plans.c.type == "course",
                        plans.c.is_active,
                    ),
                )
                .outerjoin(
                    memberships,
                    sa.and_(
                        memberships.c.organization_id == courses.c.organization_id,
                        memberships.c.user_id == buyer.sub,
                        memberships.c.role.is_not(None),
                    ),
                )
                .where(courses.c.id == course_id)
            )
        )
        .mappings()
        .first()
    )
    if row is None or row["status"] != "published":
        raise NotFound("This course is not available", code="COURSE_NOT_FOUND")
    if row["plan_id"] is None:
        raise BadRequest("This course has no active plan", code="NO_ACTIVE_PLAN")
    course = plan = row
    org_id: uuid.UUID = row["organization_id"]
    membership_id: uuid.UUID | None = row["membership_id"]
    if membership_id is None:
        await attach_lead(uow, org_id, buyer, "course_purchase", now)
    free = is_free(plan["price_in_cents"])

    def opened(existing: Any) -> Any:
        return open_for_checkout(
            existing,
            new_id=uuid.uuid4(),
            user_id=buyer.sub,
            course_id=course_id,
            organization_id=org_id,
            membership_id=membership_id,
            buyer_email=buyer.email,
            free=free,
            now=now,
        )

    existing = await store.lock(uow, user_id=buyer.sub, course_id=course_id)
    t = opened(existing)
    if existing is None and not await store.insert_new(uow, t.entitlement):
        # A concurrent checkout created the row first: decide again against its row.
        t = opened(await store.lock(uow, user_id=buyer.sub, course_id=course_id))
        await store.update(uow, t.entitlement)
    elif existing is not None:
        await store.update(uow, t.entitlement)
    await store.record(uow, t)
    ent_id = t.entitlement.id
    if free:
        return CheckoutResponse(payment_page_url=None, entitlement_id=ent_id)
    url = await _open_payment(
        uow,
        ctx,
        organization_id=org_id,
        buyer=buyer,
        amount=plan["price_in_cents"],
        currency=plan["currency"],
        description=course["name"] or "Course",
        link={"entitlement_id": ent_id},
        now=now,
    )
    return CheckoutResponse(payment_page_url=url, entitlement_id=ent_id)


# --- custom course offer checkout ---------------------------------------------------------


async def checkout_offer(
    ctx: CheckoutContext, code: str, buyer: Principal, idempotency_key: str | None
) -> CheckoutResponse:
    now = datetime.now(UTC)
    async with ctx.db.unit_of_work() as uow:

        async def run() -> CheckoutResponse:
            return await _checkout_offer(uow, ctx, code, buyer, now)

        return await idempotent(uow, buyer.sub, idempotency_key, f"offer:{code}", run)


async def _checkout_offer(
    uow: UnitOfWork, ctx: CheckoutContext, code: str, buyer: Principal, now: datetime
) -> CheckoutResponse:
    offer = (
        (
            await uow.session.execute(
                sa.select(custom_course_offers).where(custom_course_offers.c.code == code)
            )
        )
        .mappings()
        .first()
    )
    if offer is None:
        raise NotFound("No such custom course offer", code="OFFER_NOT_FOUND")
    org_id: uuid.UUID = offer["organization_id"]
    if await _membership_id(uow, org_id, buyer.sub) is None:
        await attach_lead(uow, org_id, buyer, "custom_course_purchase", now)
    purchase_id = uuid.uuid4()
    free = is_free(offer["price_in_cents"])
    await uow.session.execute(
        sa.insert(custom_course_purchases).values(
            id=purchase_id,
            offer_id=offer["id"],
            organization_id=org_id,
            user_id=buyer.sub,
            status="paid" if free else "pending",
            version=1,
        )
    )
    if free:
        publish_purchase(uow, offer, purchase_id, buyer.sub, None, now)
        return CheckoutResponse(payment_page_url=None, purchase_id=purchase_id)
    url = await _open_payment(
        uow,
        ctx,
        organization_id=org_id,
        buyer=buyer,
        amount=offer["price_in_cents"],
        currency=offer["currency"],
        description=offer["title"],
        link={"custom_course_purchase_id": purchase_id},
        now=now,
    )
    return CheckoutResponse(payment_page_url=url, purchase_id=purchase_id)


def publish_purchase(
    uow: UnitOfWork,
    offer: Mapping[Any, Any],
    purchase_id: uuid.UUID,
    user_id: str,
    transaction_id: uuid.UUID | None,
    now: datetime,
) -> None:
    uow.publish(
        CustomCoursePurchased(
            purchase_id=purchase_id,
            offer_id=offer["id"],
            user_id=user_id,
            organization_id=offer["organization_id"],
            course_code=offer["code"],
            offer_title=offer["title"],
            amount_in_cents=offer["price_in_cents"],
            currency=offer["currency"],
            transaction_id=transaction_id,
            purchased_at=now,
        ),
        aggregate_id=purchase_id,
        aggregate_version=1,  # a purchase is announced once, when it is paid (or free)
    )
