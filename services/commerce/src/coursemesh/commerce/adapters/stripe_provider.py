"""Stripe Checkout as the payment provider: sessions through the ``stripe`` library, webhooks
verified with Stripe's signature scheme and mapped to the internal outcomes."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe

from coursemesh.chassis.transaction import Transaction
from coursemesh.commerce.app.ports import (
    ExpiryOutcome,
    HostedPayment,
    HostedPaymentRequest,
    PaymentProviderUnavailable,
    ProviderName,
    RefundRequest,
    WebhookRejected,
)
from coursemesh.commerce.domain.payments import Outcome, PaymentEvent

log = logging.getLogger("coursemesh.commerce.stripe")

TOLERANCE_SECONDS = 300
# Stripe accepts expires_at between 30 minutes and 24 hours from now.
_MIN_EXPIRY, _MAX_EXPIRY = timedelta(minutes=30, seconds=30), timedelta(hours=23, minutes=59)


@dataclass
class StripeProvider:
    api_key: str
    webhook_secret: str
    public_base_url: str
    api_base: str | None = None
    name: ProviderName = "stripe"
    _client: stripe.StripeClient = field(init=False, repr=False)

    def __post_init__(self) -> None:
        base: Any = {"api": self.api_base} if self.api_base else None
        self._client = stripe.StripeClient(
            self.api_key, base_addresses=base, http_client=stripe.HTTPXClient()
        )

    async def create_hosted_payment(
        self, tx: Transaction, request: HostedPaymentRequest
    ) -> HostedPayment:
        now = datetime.now(UTC)
        expires = min(max(request.expires_at - now, _MIN_EXPIRY), _MAX_EXPIRY)
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": request.amount_in_cents,
                        "product_data": {"name": request.description},
                    },
                }
            ],
            "metadata": request.metadata,
            "payment_intent_data": {"metadata": request.metadata},
            "client_reference_id": str(request.transaction_id),
            "success_url": f"{self.public_base_url.rstrip('/')}/checkout/success",
            "cancel_url": f"{self.public_base_url.rstrip('/')}/checkout/cancelled",
            "expires_at": int((now + expires).timestamp()),
        }
        if request.buyer_email:
            params["customer_email"] = request.buyer_email
        created = await self._client.v1.checkout.sessions.create_async(params)  # type: ignore[arg-type]
        return HostedPayment(str(created.id), str(created.url))

    def verify_webhook(
        self, organization_id: uuid.UUID, body: bytes, headers: Mapping[str, str]
    ) -> PaymentEvent:
        header = {k.lower(): v for k, v in headers.items()}.get("stripe-signature")
        try:
            stripe.WebhookSignature.verify_header(
                body.decode(), header, self.webhook_secret, TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError as exc:
            stale = "tolerance" in str(exc)
            raise WebhookRejected(
                f"Webhook rejected: {exc}",
                code="WEBHOOK_TIMESTAMP_STALE" if stale else "WEBHOOK_SIGNATURE_INVALID",
            ) from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise WebhookRejected(f"Webhook rejected: {exc}") from None
        _reject_future_timestamp(header or "")
        try:
            event = json.loads(body)
            return map_event(event)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise WebhookRejected(
                f"Webhook body is not a Stripe event: {exc}", code="WEBHOOK_MALFORMED"
            ) from None

    async def confirm_event(self, tx: Transaction, event: PaymentEvent) -> None:
        """Stripe's signed word stands: nothing of Stripe's is recorded here to contradict it."""

    async def expire_hosted_payment(
        self, tx: Transaction, provider_transaction_id: str
    ) -> ExpiryOutcome:
        """``POST /v1/checkout/sessions/{id}/expire``. Stripe refuses to expire a session that
        is not open: then the session is read (``GET``) and ``complete`` means paid (or paying,
        by an async method), ``expired`` or unknown to Stripe means it can no longer be paid.
        Any other failure is PaymentProviderUnavailable."""
        sessions = self._client.v1.checkout.sessions
        try:
            await sessions.expire_async(provider_transaction_id)
            return "expired"
        except stripe.InvalidRequestError:
            pass  # not open (any more): see what it became
        except stripe.StripeError as exc:
            raise _unavailable("expire the checkout session", exc) from None
        try:
            session = await sessions.retrieve_async(provider_transaction_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return "expired"
            raise _unavailable("read the checkout session", exc) from None
        except stripe.StripeError as exc:
            raise _unavailable("read the checkout session", exc) from None
        status = getattr(session, "status", None)
        if status == "complete":
            return "completed"
        if status == "expired":
            return "expired"
        raise PaymentProviderUnavailable(
            f"Stripe did not expire checkout session {provider_transaction_id} (it is {status})"
        )

    async def refund_payment(self, tx: Transaction, request: RefundRequest) -> None:
        """``POST /v1/refunds`` for the payment intent, the whole amount, reason ``duplicate``,
        our reason in its metadata; one idempotency key per payment, so a webhook delivered
        again after a failed commit does not refund twice. A charge refunded before is done."""
        if not request.provider_payment_id:
            raise PaymentProviderUnavailable(
                f"Payment {request.transaction_id} has no Stripe payment intent to refund",
                code="REFUND_NOT_POSSIBLE",
            )
        params: dict[str, Any] = {
            "payment_intent": request.provider_payment_id,
            "reason": "duplicate",
            "metadata": {
                "paymentTransactionId": str(request.transaction_id),
                "coursemeshReason": request.reason,
            },
        }
        options: Any = {"idempotency_key": f"coursemesh-late-refund-{request.transaction_id}"}
        try:
            await self._client.v1.refunds.create_async(params, options)  # type: ignore[arg-type]
        except stripe.InvalidRequestError as exc:
            if exc.code == "charge_already_refunded":
                return
            raise _unavailable("refund the payment", exc) from None
        except stripe.StripeError as exc:
            raise _unavailable("refund the payment", exc) from None


def _unavailable(action: str, exc: stripe.StripeError) -> PaymentProviderUnavailable:
    log.warning("stripe failed to %s: %s (HTTP %s)", action, exc, exc.http_status)
    return PaymentProviderUnavailable(f"Stripe could not {action} (HTTP {exc.http_status})")


def _reject_future_timestamp(header: str) -> None:
    """Stripe's helper only rejects old timestamps; the window is +-5 minutes both ways."""
    for part in header.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "t" and int(value) > time.time() + TOLERANCE_SECONDS:
            raise WebhookRejected(
                "Webhook timestamp is in the future", code="WEBHOOK_TIMESTAMP_STALE"
            )


def map_event(event: Mapping[str, Any]) -> PaymentEvent:
    """Stripe event -> internal outcome (None: recorded, otherwise ignored)."""
    kind = str(event["type"])
    obj: Mapping[str, Any] = event["data"]["object"]
    metadata = {str(k): str(v) for k, v in (obj.get("metadata") or {}).items()}
    outcome: Outcome | None = None
    session_id: str | None = None
    payment_id: str | None = obj.get("payment_intent")
    failure: str | None = None
    amount: int | None = None
    currency: str | None = None
    if kind.startswith("checkout.session."):
        session_id = str(obj["id"])
        # What the session charged; a charge's refund or a dispute may be for part of it, so
        # only the session's events are compared with the checkout.
        amount = _cents(obj.get("amount_total"))
        currency = str(obj["currency"]).upper() if obj.get("currency") else None
        if kind == "checkout.session.completed":
            # An async method (e.g. a bank debit) completes the session before it is paid.
            outcome = "completed" if obj.get("payment_status") == "paid" else None
        elif kind == "checkout.session.async_payment_succeeded":
            outcome = "completed"
        elif kind == "checkout.session.async_payment_failed":
            outcome, failure = "failed", "async_payment_failed"
        elif kind == "checkout.session.expired":
            outcome = "expired"
    elif kind == "charge.refunded":
        outcome = "refunded"
    elif kind == "charge.dispute.created":
        outcome, failure = "disputed", str(obj.get("reason") or "dispute")
    return PaymentEvent(
        provider_event_id=str(event["id"]),
        type=kind,
        outcome=outcome,
        provider_transaction_id=session_id,
        provider_payment_id=payment_id,
        metadata=metadata,
        failure_reason=failure,
        amount_in_cents=amount,
        currency=currency,
    )


def _cents(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"amount_total is not an integer: {value!r}")
    return value
