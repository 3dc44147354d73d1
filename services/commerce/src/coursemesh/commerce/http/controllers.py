"""Commerce's HTTP routes: staff, checkout, payment webhooks and the sandbox payment page."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import MediaType, Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter

from coursemesh.chassis.auth import Principal, authenticated, principal_of
from coursemesh.chassis.db import Database
from coursemesh.chassis.paging import Offset
from coursemesh.commerce.adapters import sandbox
from coursemesh.commerce.app import checkout, staff
from coursemesh.commerce.app.checkout import CheckoutResponse
from coursemesh.commerce.app.webhooks import handle_payment_event
from coursemesh.commerce.http.runtime import Runtime
from coursemesh.commerce.http.schemas import (
    EntitlementPage,
    EntitlementView,
    LeadPage,
    LeadView,
    OfferBody,
    OfferView,
    PlanView,
    PriceBody,
    RevokeBody,
    WebhookAck,
)

IdempotencyKey = Annotated[
    str | None, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=255)
]
Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=100)]
ORG = "/organizations/{org_id:uuid}"


# --- staff ------------------------------------------------------------------------------


@patch(f"{ORG}/courses/{{course_id:uuid}}/price", guards=[authenticated])
async def set_price(
    org_id: FromPath[uuid.UUID],
    course_id: FromPath[uuid.UUID],
    data: JSONBody[PriceBody],
    db: NamedDependency[Database],
    principal: NamedDependency[Principal],
) -> PlanView:
    row = await staff.set_price(
        db, org_id, course_id, principal.sub, data.price_in_cents, data.is_active
    )
    return PlanView(
        plan_id=row["id"],
        course_id=row["course_id"],
        organization_id=row["organization_id"],
        price_in_cents=row["price_in_cents"],
        currency=row["currency"],
        is_active=row["is_active"],
    )


@post(f"{ORG}/entitlements/{{entitlement_id:uuid}}/revoke", guards=[authenticated], status_code=200)
async def revoke(
    org_id: FromPath[uuid.UUID],
    entitlement_id: FromPath[uuid.UUID],
    data: JSONBody[RevokeBody],
    db: NamedDependency[Database],
    principal: NamedDependency[Principal],
) -> EntitlementView:
    ent = await staff.revoke_entitlement(db, org_id, entitlement_id, principal.sub, data.reason)
    return EntitlementView.of(dataclasses.asdict(ent))


@post(f"{ORG}/custom-course-offers", guards=[authenticated])
async def create_offer(
    org_id: FromPath[uuid.UUID],
    data: JSONBody[OfferBody],
    db: NamedDependency[Database],
    principal: NamedDependency[Principal],
) -> OfferView:
    row = await staff.create_offer(
        db, org_id, principal.sub, data.code, data.title, data.price_in_cents
    )
    return OfferView(
        offer_id=row["id"],
        organization_id=row["organization_id"],
        code=row["code"],
        title=row["title"],
        price_in_cents=row["price_in_cents"],
        currency=row["currency"],
    )


@get(f"{ORG}/courses/{{course_id:uuid}}/entitlements", guards=[authenticated])
async def list_course_entitlements(
    org_id: FromPath[uuid.UUID],
    course_id: FromPath[uuid.UUID],
    db: NamedDependency[Database],
    principal: NamedDependency[Principal],
    limit: Limit = 50,
    offset: Offset = 0,
) -> EntitlementPage:
    rows, total = await staff.course_entitlements(
        db, org_id, course_id, principal.sub, limit, offset
    )
    return EntitlementPage([EntitlementView.of(r) for r in rows], total, limit, offset)


@get(f"{ORG}/leads", guards=[authenticated])
async def list_leads(
    org_id: FromPath[uuid.UUID],
    db: NamedDependency[Database],
    principal: NamedDependency[Principal],
    limit: Limit = 50,
    offset: Offset = 0,
) -> LeadPage:
    rows, total = await staff.organization_lead_list(db, org_id, principal.sub, limit, offset)
    items = [
        LeadView(
            lead_id=r["id"],
            user_id=r["user_id"],
            email=r["email"],
            source=r["source"],
            membership_id=r["membership_id"],
            linked_at=r["created_at"],
        )
        for r in rows
    ]
    return LeadPage(items, total, limit, offset)


# --- buyers -------------------------------------------------------------------------------


@post("/courses/{course_id:uuid}/checkout", guards=[authenticated])
async def checkout_course(
    request: Request[Any, Any, Any],
    course_id: FromPath[uuid.UUID],
    idempotency_key: IdempotencyKey = None,
) -> CheckoutResponse:
    # The busiest write: no dependencies (Litestar resolves two or more through an anyio task
    # group, which cost more than a free checkout's own Python).
    runtime: Runtime = request.app.state.commerce
    return await checkout.checkout_course(
        runtime.checkout(request.app.state.db), course_id, principal_of(request), idempotency_key
    )


@post("/custom-course-offers/{code:str}/checkout", guards=[authenticated])
async def checkout_offer(
    code: FromPath[str],
    db: NamedDependency[Database],
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
    idempotency_key: IdempotencyKey = None,
) -> CheckoutResponse:
    return await checkout.checkout_offer(runtime.checkout(db), code, principal, idempotency_key)


# --- provider -> commerce -----------------------------------------------------------------


@post("/webhooks/payments/{org_id:uuid}", status_code=200)
async def payment_webhook(
    org_id: FromPath[uuid.UUID],
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    runtime: NamedDependency[Runtime],
) -> WebhookAck:
    body = await request.body()
    event = runtime.provider.verify_webhook(org_id, body, dict(request.headers))
    handled = await handle_payment_event(
        db, org_id, runtime.provider, event, runtime.receipts_wake.set
    )
    return WebhookAck(status=handled)


# --- the sandbox provider's hosted page ---------------------------------------------------


@get("/pay/{session_id:str}", media_type=MediaType.HTML)
async def payment_page(session_id: FromPath[str], db: NamedDependency[Database]) -> str:
    row = await sandbox.load_session(db, session_id)
    return sandbox.render_page(row, datetime.now(UTC))


async def _settle(db: Database, runtime: Runtime, session_id: str, paid: bool) -> Response[str]:
    row = await sandbox.settle_session(
        db, runtime.sandbox, session_id, paid=paid, now=datetime.now(UTC)
    )
    runtime.webhooks_wake.set()
    return Response(sandbox.render_page(row, datetime.now(UTC)), media_type=MediaType.HTML)


@post("/pay/{session_id:str}/pay", status_code=200)
async def pay(
    session_id: FromPath[str], db: NamedDependency[Database], runtime: NamedDependency[Runtime]
) -> Response[str]:
    return await _settle(db, runtime, session_id, paid=True)


@post("/pay/{session_id:str}/decline", status_code=200)
async def decline(
    session_id: FromPath[str], db: NamedDependency[Database], runtime: NamedDependency[Runtime]
) -> Response[str]:
    return await _settle(db, runtime, session_id, paid=False)


ROUTES = [
    set_price,
    revoke,
    create_offer,
    list_course_entitlements,
    list_leads,
    checkout_course,
    checkout_offer,
    payment_webhook,
    payment_page,
    pay,
    decline,
]
