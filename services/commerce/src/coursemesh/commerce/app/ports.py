"""Ports of the commerce use cases: the payment provider and what it tells us."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from coursemesh.chassis.errors import BadRequest
from coursemesh.contracts import Envelope, Event

ProviderName = Literal["sandbox", "stripe"]
Outcome = Literal["completed", "failed", "refunded", "disputed", "expired"]

# The metadata keys every hosted payment carries back to us in its webhooks.
META_ENTITLEMENT = "courseEntitlementId"
META_PURCHASE = "customCoursePurchaseId"
META_TRANSACTION = "paymentTransactionId"


@dataclass(frozen=True)
class HostedPaymentRequest:
    transaction_id: uuid.UUID
    organization_id: uuid.UUID
    seller_name: str
    seller_logo_url: str | None
    description: str
    amount_in_cents: int
    currency: str
    buyer_email: str | None
    metadata: dict[str, str]
    expires_at: datetime


@dataclass(frozen=True)
class HostedPayment:
    provider_transaction_id: str
    payment_page_url: str


@dataclass(frozen=True)
class PaymentEvent:
    """A verified provider webhook, translated to what commerce cares about.

    ``outcome`` is None for event types commerce ignores (they are still recorded, so a
    replay is recognised). ``amount_in_cents`` and ``currency`` (ISO 4217, upper case) are what
    the provider says was charged; None when the event type carries no amount of the checkout."""

    provider_event_id: str
    type: str
    outcome: Outcome | None
    provider_transaction_id: str | None = None
    provider_payment_id: str | None = None
    metadata: Mapping[str, str] | None = None
    failure_reason: str | None = None
    amount_in_cents: int | None = None
    currency: str | None = None


class Publisher(Protocol):
    """What stages events for a write: a ``UnitOfWork``, or ``StagedEvents`` for a write that is
    one driver statement."""

    def publish(
        self, payload: Event, *, aggregate_id: str | uuid.UUID, aggregate_version: int
    ) -> Envelope[Event]: ...


class WebhookRejected(BadRequest):
    """The webhook's signature or timestamp did not verify, or its verified body is not an
    event of the provider (``WEBHOOK_MALFORMED``)."""

    code = "WEBHOOK_SIGNATURE_INVALID"


class PaymentProvider(Protocol):
    name: ProviderName

    async def create_hosted_payment(
        self, session: AsyncSession, request: HostedPaymentRequest
    ) -> HostedPayment:
        """Open a hosted payment; ``session`` is the checkout's transaction (the sandbox
        stores its session there, an external provider ignores it)."""
        ...

    def verify_webhook(
        self, organization_id: uuid.UUID, body: bytes, headers: Mapping[str, str]
    ) -> PaymentEvent:
        """Verify the signature over the raw body (+-5 min) and parse; raise WebhookRejected."""
        ...

    async def confirm_event(self, session: AsyncSession, event: PaymentEvent) -> None:
        """Raise a DomainError when the provider's own records contradict a verified event
        (``session`` is the webhook's transaction); return when they do not."""
        ...
