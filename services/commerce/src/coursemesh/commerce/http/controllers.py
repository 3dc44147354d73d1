"""Commerce's HTTP routes: staff, checkout, payment webhooks and the sandbox payment page."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import MediaType, Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter

from coursemesh.chassis.auth import Principal, authenticated, principal_of
from coursemesh.chassis.paging import Offset
from coursemesh.commerce.app.checkout import CheckoutResponse
from coursemesh.commerce.bootstrap import runtime
from coursemesh.commerce.domain.checkout import Buyer
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
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    course_id: FromPath[uuid.UUID],
    data: JSONBody[PriceBody],
    principal: NamedDependency[Principal],
) -> PlanView:
    plan = await runtime(request).staff.set_price(
        org_id, course_id, principal.sub, data.price_in_cents, data.is_active
    )
    return PlanView(
        plan_id=plan.id,
        course_id=plan.course_id,
        organization_id=plan.organization_id,
        price_in_cents=plan.price_in_cents,
        currency=plan.currency,
        is_active=plan.is_active,
    )


@post(f"{ORG}/entitlements/{{entitlement_id:uuid}}/revoke", guards=[authenticated], status_code=200)
async def revoke(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    entitlement_id: FromPath[uuid.UUID],
    data: JSONBody[RevokeBody],
    principal: NamedDependency[Principal],
) -> EntitlementView:
    ent = await runtime(request).staff.revoke_entitlement(
        org_id, entitlement_id, principal.sub, data.reason
    )
    return EntitlementView.of(ent)


@post(f"{ORG}/custom-course-offers", guards=[authenticated])
async def create_offer(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    data: JSONBody[OfferBody],
    principal: NamedDependency[Principal],
) -> OfferView:
    offer = await runtime(request).staff.create_offer(
        org_id, principal.sub, data.code, data.title, data.price_in_cents
    )
    return OfferView(
        offer_id=offer.id,
        organization_id=offer.organization_id,
        code=offer.code,
        title=offer.title,
        price_in_cents=offer.price_in_cents,
        currency=offer.currency,
    )


@get(f"{ORG}/courses/{{course_id:uuid}}/entitlements", guards=[authenticated])
async def list_course_entitlements(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    course_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
    limit: Limit = 50,
    offset: Offset = 0,
) -> EntitlementPage:
    ents, total = await runtime(request).staff.course_entitlements(
        org_id, course_id, principal.sub, limit, offset
    )
    return EntitlementPage([EntitlementView.of(e) for e in ents], total, limit, offset)


@get(f"{ORG}/leads", guards=[authenticated])
async def list_leads(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
    limit: Limit = 50,
    offset: Offset = 0,
) -> LeadPage:
    entries, total = await runtime(request).staff.organization_leads(
        org_id, principal.sub, limit, offset
    )
    items = [
        LeadView(
            lead_id=e.lead_id,
            user_id=e.user_id,
            email=e.email,
            source=e.source,
            membership_id=e.membership_id,
            linked_at=e.linked_at,
        )
        for e in entries
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
    # group, which costs more than a free checkout's own work).
    principal = principal_of(request)
    return await runtime(request).checkout.course(
        course_id, Buyer(principal.sub, principal.email), idempotency_key
    )


@post("/custom-course-offers/{code:str}/checkout", guards=[authenticated])
async def checkout_offer(
    request: Request[Any, Any, Any],
    code: FromPath[str],
    principal: NamedDependency[Principal],
    idempotency_key: IdempotencyKey = None,
) -> CheckoutResponse:
    return await runtime(request).checkout.offer(
        code, Buyer(principal.sub, principal.email), idempotency_key
    )


# --- provider -> commerce -----------------------------------------------------------------


@post("/webhooks/payments/{org_id:uuid}", status_code=200)
async def payment_webhook(
    org_id: FromPath[uuid.UUID], request: Request[Any, Any, Any]
) -> WebhookAck:
    rt = runtime(request)
    body = await request.body()
    event = rt.provider.verify_webhook(org_id, body, dict(request.headers))
    return WebhookAck(status=await rt.webhooks.handle(org_id, event))


# --- the sandbox provider's hosted page ---------------------------------------------------


@get("/pay/{session_id:str}", media_type=MediaType.HTML)
async def payment_page(request: Request[Any, Any, Any], session_id: FromPath[str]) -> str:
    return await runtime(request).sandbox_pages.show(session_id)


@post("/pay/{session_id:str}/pay", status_code=200)
async def pay(request: Request[Any, Any, Any], session_id: FromPath[str]) -> Response[str]:
    page = await runtime(request).sandbox_pages.settle(session_id, paid=True)
    return Response(page, media_type=MediaType.HTML)


@post("/pay/{session_id:str}/decline", status_code=200)
async def decline(request: Request[Any, Any, Any], session_id: FromPath[str]) -> Response[str]:
    page = await runtime(request).sandbox_pages.settle(session_id, paid=False)
    return Response(page, media_type=MediaType.HTML)


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
