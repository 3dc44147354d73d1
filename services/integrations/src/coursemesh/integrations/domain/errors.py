"""The integrations service's refusals, each with its stable problem code."""

from __future__ import annotations

from coursemesh.chassis.errors import NotFound, Unprocessable


class EndpointUrlInvalid(Unprocessable):
    code, title = "ENDPOINT_URL_INVALID", "Invalid endpoint URL"


class EndpointAddressForbidden(Unprocessable):
    code, title = "ENDPOINT_ADDRESS_FORBIDDEN", "Endpoint address not allowed"


class UnknownEventType(Unprocessable):
    code, title = "UNKNOWN_EVENT_TYPE", "Unknown event type"


class EndpointNotFound(NotFound):
    code, title = "WEBHOOK_ENDPOINT_NOT_FOUND", "No such webhook endpoint"


class DeliveryNotFound(NotFound):
    code, title = "DELIVERY_NOT_FOUND", "No such delivery"
