"""``/organizations/{orgId}/webhook-endpoints``: staff register endpoints, rotate their
secrets, send a test event, read the delivery log and replay deliveries."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED

from coursemesh.chassis.auth import Principal, authenticated
from coursemesh.chassis.errors import Unprocessable
from coursemesh.chassis.openapi import problems
from coursemesh.chassis.paging import Offset
from coursemesh.integrations.app.ports import EndpointChanges
from coursemesh.integrations.bootstrap import runtime, system_now
from coursemesh.integrations.domain.errors import (
    DeliveryNotFound,
    EndpointAddressForbidden,
    EndpointNotFound,
    EndpointUrlInvalid,
    UnknownEventType,
)
from coursemesh.integrations.http.schemas import (
    AttemptView,
    DeliveryDetail,
    DeliveryPage,
    DeliveryView,
    EndpointBody,
    EndpointPage,
    EndpointPatch,
    EndpointView,
    EndpointWithSecret,
    ReplayedCount,
    ReplayFailedBody,
    TestSent,
)

Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=100)]
Status = Literal["pending", "delivered", "failed"]
STAFF = (404, "NOT_FOUND")


class WebhookEndpoints(Controller):
    path = "/organizations/{org_id:uuid}/webhook-endpoints"
    guards = [authenticated]

    @post("/", opt=problems(STAFF, EndpointUrlInvalid, EndpointAddressForbidden, UnknownEventType))
    async def register(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        data: JSONBody[EndpointBody],
    ) -> EndpointWithSecret:
        """Register an endpoint for some event types; the answer holds its signing secret."""
        endpoint = await runtime(request).endpoints.register(
            org_id, principal.sub, data.url, data.event_types, data.description, system_now()
        )
        return EndpointWithSecret.of(endpoint)

    @get("/", opt=problems(STAFF))
    async def list_endpoints(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> EndpointPage:
        items, total = await runtime(request).endpoints.listed(org_id, principal.sub, offset, limit)
        return EndpointPage([EndpointView.of(e) for e in items], total, limit, offset)

    @get("/{endpoint_id:uuid}", opt=problems(STAFF, EndpointNotFound))
    async def get_endpoint(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        endpoint_id: FromPath[uuid.UUID],
    ) -> EndpointView:
        endpoint = await runtime(request).endpoints.get(org_id, endpoint_id, principal.sub)
        return EndpointView.of(endpoint)

    @patch(
        "/{endpoint_id:uuid}",
        opt=problems(STAFF, EndpointNotFound, EndpointUrlInvalid, EndpointAddressForbidden),
    )
    async def update_endpoint(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        endpoint_id: FromPath[uuid.UUID],
        data: JSONBody[EndpointPatch],
    ) -> EndpointView:
        """Change the URL, event types or description; disable, or enable again (its pending
        deliveries resume)."""
        changes = EndpointChanges(data.url, data.event_types, data.description, data.enabled)
        endpoint = await runtime(request).endpoints.update(
            org_id, endpoint_id, principal.sub, changes, system_now()
        )
        return EndpointView.of(endpoint)

    @delete("/{endpoint_id:uuid}", opt=problems(STAFF, EndpointNotFound))
    async def delete_endpoint(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        endpoint_id: FromPath[uuid.UUID],
    ) -> None:
        """Remove the endpoint, its deliveries and their log."""
        await runtime(request).endpoints.delete(org_id, endpoint_id, principal.sub)

    @post(
        "/{endpoint_id:uuid}/rotate-secret", status_code=200, opt=problems(STAFF, EndpointNotFound)
    )
    async def rotate_secret(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        endpoint_id: FromPath[uuid.UUID],
    ) -> EndpointWithSecret:
        """A new secret; deliveries carry a signature by the old one too until
        ``previousSecretExpiresAt``."""
        endpoint = await runtime(request).endpoints.rotate_secret(
            org_id, endpoint_id, principal.sub, system_now()
        )
        return EndpointWithSecret.of(endpoint)

    @post(
        "/{endpoint_id:uuid}/test",
        status_code=HTTP_202_ACCEPTED,
        opt=problems(STAFF, EndpointNotFound),
    )
    async def send_test(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        endpoint_id: FromPath[uuid.UUID],
    ) -> TestSent:
        """Send a ``webhook.test`` event to this endpoint (whatever it subscribes to)."""
        sent = await runtime(request).endpoints.send_test(
            org_id, endpoint_id, principal.sub, system_now()
        )
        return TestSent(sent.id, sent.webhook_id)

    @get("/{endpoint_id:uuid}/deliveries", opt=problems(STAFF, EndpointNotFound))
    async def list_deliveries(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        endpoint_id: FromPath[uuid.UUID],
        status: Annotated[Status | None, QueryParameter(name="status")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> DeliveryPage:
        """The endpoint's deliveries, newest first: status, attempts, the last answer's code
        and latency, the next retry."""
        items, total = await runtime(request).endpoints.deliveries(
            org_id, endpoint_id, principal.sub, status, offset, limit
        )
        return DeliveryPage([DeliveryView.of(d) for d in items], total, limit, offset)

    @get(
        "/{endpoint_id:uuid}/deliveries/{delivery_id:uuid}",
        opt=problems(STAFF, EndpointNotFound, DeliveryNotFound),
    )
    async def get_delivery(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        endpoint_id: FromPath[uuid.UUID],
        delivery_id: FromPath[uuid.UUID],
    ) -> DeliveryDetail:
        """One delivery with every attempt made."""
        delivery, attempts = await runtime(request).endpoints.delivery(
            org_id, endpoint_id, delivery_id, principal.sub
        )
        return DeliveryDetail(DeliveryView.of(delivery), [AttemptView.of(a) for a in attempts])

    @post(
        "/{endpoint_id:uuid}/deliveries/{delivery_id:uuid}/replay",
        status_code=HTTP_202_ACCEPTED,
        opt=problems(STAFF, EndpointNotFound, DeliveryNotFound),
    )
    async def replay(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        endpoint_id: FromPath[uuid.UUID],
        delivery_id: FromPath[uuid.UUID],
    ) -> DeliveryView:
        """Send the delivery again: the same ``webhook-id`` and body, its retries started over."""
        delivery = await runtime(request).endpoints.replay(
            org_id, endpoint_id, delivery_id, principal.sub, system_now()
        )
        return DeliveryView.of(delivery)

    @post(
        "/{endpoint_id:uuid}/replay-failed",
        status_code=HTTP_202_ACCEPTED,
        opt=problems(STAFF, EndpointNotFound, (422, "INVALID_TIME_RANGE")),
    )
    async def replay_failed(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        endpoint_id: FromPath[uuid.UUID],
        data: JSONBody[ReplayFailedBody],
    ) -> ReplayedCount:
        """Send again every failed delivery created in ``[since, until)``."""
        if data.since.tzinfo is None or data.until.tzinfo is None or data.since >= data.until:
            raise Unprocessable(
                "since and until must carry a time zone, since before until",
                code="INVALID_TIME_RANGE",
            )
        count = await runtime(request).endpoints.replay_failed(
            org_id, endpoint_id, principal.sub, data.since, data.until, system_now()
        )
        return ReplayedCount(count)
