"""Stripe as the payment provider, with Connect: each organization has a connected account
(``type=standard``, onboarded through an Account Link); a checkout is a Checkout Session created
on that account (a direct charge, ``Stripe-Account`` header) with the platform's fee as the
payment's ``application_fee_amount``; its expiry and refunds go to the same account. Every event
arrives at one platform endpoint (``POST /webhooks/stripe``), signed with that endpoint's secret
and naming the connected account in its ``account`` field. Calls go through the ``stripe``
library."""

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
    OnboardingLink,
    PaymentProviderRefused,
    PaymentProviderUnavailable,
    ProviderName,
    RefundRequest,
    WebhookRejected,
)
from coursemesh.commerce.domain.accounts import AccountEvent, AccountState
from coursemesh.commerce.domain.payments import Outcome, PaymentEvent

log = logging.getLogger("coursemesh.commerce.stripe")

TOLERANCE_SECONDS = 300
# Stripe accepts expires_at between 30 minutes and 24 hours from now.
_MIN_EXPIRY, _MAX_EXPIRY = timedelta(minutes=30, seconds=30), timedelta(hours=23, minutes=59)


@dataclass
class StripeProvider:
    api_key: str
    #: the signing secrets of the platform's endpoint (more than one while rotating, or for
    #: a Connect endpoint and an account endpoint pointing at the same URL)
    webhook_secrets: tuple[str, ...]
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
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "expires_at": int((now + expires).timestamp()),
        }
        if request.application_fee_in_cents > 0:
            params["payment_intent_data"]["application_fee_amount"] = (
                request.application_fee_in_cents
            )
        if request.buyer_email:
            params["customer_email"] = request.buyer_email
        options: Any = {
            "stripe_account": request.account_id,
            # a retried checkout transaction opens the same session, not a second one
            "idempotency_key": f"coursemesh-checkout-{request.transaction_id}",
        }
        try:
            created = await self._client.v1.checkout.sessions.create_async(params, options)  # type: ignore[arg-type]
        except stripe.InvalidRequestError as exc:
            raise _refused("open a checkout session", exc) from None
        except stripe.StripeError as exc:
            raise _unavailable("open a checkout session", exc) from None
        return HostedPayment(str(created.id), str(created.url))

    async def create_account(
        self, tx: Transaction, organization_id: uuid.UUID, seller_name: str
    ) -> AccountState:
        """``POST /v1/accounts``: a Standard connected account (the seller's own Stripe
        dashboard; fees and disputes are theirs, as with every direct charge). One idempotency
        key per organization: a retried onboarding gets the same account."""
        params: dict[str, Any] = {
            "type": "standard",
            "metadata": {"organizationId": str(organization_id)},
        }
        if seller_name:
            params["business_profile"] = {"name": seller_name}
        options: Any = {"idempotency_key": f"coursemesh-account-{organization_id}"}
        try:
            account = await self._client.v1.accounts.create_async(params, options)  # type: ignore[arg-type]
        except stripe.StripeError as exc:
            raise _unavailable("open a connected account", exc) from None
        return _account_state(account.to_dict())

    async def retrieve_account(self, tx: Transaction, account_id: str) -> AccountState:
        try:
            account = await self._client.v1.accounts.retrieve_async(account_id)
        except stripe.StripeError as exc:
            raise _unavailable("read the connected account", exc) from None
        return _account_state(account.to_dict())

    async def onboarding_link(
        self, tx: Transaction, account_id: str, return_url: str, refresh_url: str
    ) -> OnboardingLink:
        """``POST /v1/account_links`` of type ``account_onboarding`` (Stripe's hosted
        onboarding; single use, valid for minutes)."""
        params: dict[str, Any] = {
            "account": account_id,
            "type": "account_onboarding",
            "return_url": return_url,
            "refresh_url": refresh_url,
        }
        try:
            link = await self._client.v1.account_links.create_async(params)  # type: ignore[arg-type]
        except stripe.InvalidRequestError as exc:
            raise _refused("create an onboarding link", exc) from None
        except stripe.StripeError as exc:
            raise _unavailable("create an onboarding link", exc) from None
        return OnboardingLink(str(link.url), datetime.fromtimestamp(int(link.expires_at), UTC))

    def verify_webhook(
        self, organization_id: uuid.UUID | None, body: bytes, headers: Mapping[str, str]
    ) -> PaymentEvent | AccountEvent:
        """Verified with any of the endpoint's secrets (the organization is the event's
        account's, not the URL's)."""
        header = {k.lower(): v for k, v in headers.items()}.get("stripe-signature")
        self._verify_signature(body, header)
        _reject_future_timestamp(header or "")
        try:
            event = json.loads(body)
            mapped = map_event(event)
            livemode = event.get("livemode")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise WebhookRejected(
                f"Webhook body is not a Stripe event: {exc}", code="WEBHOOK_MALFORMED"
            ) from None
        if isinstance(livemode, bool) and livemode != self.live:
            # Stripe sends a live endpoint the test-mode events of its connected accounts too:
            # they are acknowledged, never applied to live data (and the other way round)
            return PaymentEvent(
                provider_event_id=str(event["id"]), type=str(event["type"]), outcome=None
            )
        return mapped

    @property
    def live(self) -> bool:
        """Whether the API key is a live one (test-mode keys start ``sk_test_``/``rk_test_``)."""
        return self.api_key.startswith(("sk_live_", "rk_live_"))

    def _verify_signature(self, body: bytes, header: str | None) -> None:
        rejection: WebhookRejected | None = None
        for secret in self.webhook_secrets:
            try:
                stripe.WebhookSignature.verify_header(
                    body.decode(), header, secret, TOLERANCE_SECONDS
                )
                return
            except stripe.SignatureVerificationError as exc:
                stale = "tolerance" in str(exc)
                rejection = WebhookRejected(
                    f"Webhook rejected: {exc}",
                    code="WEBHOOK_TIMESTAMP_STALE" if stale else "WEBHOOK_SIGNATURE_INVALID",
                )
            except (UnicodeDecodeError, ValueError) as exc:
                raise WebhookRejected(f"Webhook rejected: {exc}") from None
        raise rejection or WebhookRejected("Webhook rejected: no signing secret configured")

    async def confirm_event(self, tx: Transaction, event: PaymentEvent) -> None:
        """Stripe's signed word stands: nothing of Stripe's is recorded here to contradict it."""

    async def expire_hosted_payment(
        self, tx: Transaction, provider_transaction_id: str, account_id: str | None
    ) -> ExpiryOutcome:
        """``POST /v1/checkout/sessions/{id}/expire``. Stripe refuses to expire a session that
        is not open: then the session is read (``GET``) and ``complete`` means paid (or paying,
        by an async method), ``expired`` or unknown to Stripe means it can no longer be paid.
        Any other failure is PaymentProviderUnavailable."""
        sessions = self._client.v1.checkout.sessions
        on_account: Any = {"stripe_account": account_id} if account_id else {}
        try:
            await sessions.expire_async(provider_transaction_id, None, on_account)
            return "expired"
        except stripe.InvalidRequestError:
            pass  # not open (any more): see what it became
        except stripe.StripeError as exc:
            raise _unavailable("expire the checkout session", exc) from None
        try:
            session = await sessions.retrieve_async(provider_transaction_id, None, on_account)
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
        """``POST /v1/refunds`` for the payment intent, the whole amount, reason ``duplicate``
        for a late payment (the platform's fee refunded too) or ``requested_by_customer`` for
        a buyer's request (the fee kept, as Stripe does by default), our reason in its
        metadata; one idempotency key per payment and kind, so a retry does not refund twice.
        A charge refunded before is done."""
        if not request.provider_payment_id:
            raise PaymentProviderUnavailable(
                f"Payment {request.transaction_id} has no Stripe payment intent to refund",
                code="REFUND_NOT_POSSIBLE",
            )
        by_buyer = request.reason == "requested_by_customer"
        params: dict[str, Any] = {
            "payment_intent": request.provider_payment_id,
            "reason": "requested_by_customer" if by_buyer else "duplicate",
            "metadata": {
                "paymentTransactionId": str(request.transaction_id),
                "coursemeshReason": request.reason,
            },
        }
        kind = "customer-refund" if by_buyer else "late-refund"
        options: Any = {"idempotency_key": f"coursemesh-{kind}-{request.transaction_id}"}
        if request.account_id:
            options["stripe_account"] = request.account_id
            if not by_buyer:
                # the payment should not have happened: the platform gives its fee back too
                params["refund_application_fee"] = True
        try:
            await self._client.v1.refunds.create_async(params, options)  # type: ignore[arg-type]
        except stripe.InvalidRequestError as exc:
            if exc.code == "charge_already_refunded":
                return
            raise _unavailable("refund the payment", exc) from None
        except stripe.StripeError as exc:
            raise _unavailable("refund the payment", exc) from None


def _refused(action: str, exc: stripe.StripeError) -> PaymentProviderRefused:
    """A request Stripe will not accept as it is (a return URL it rejects, an account it
    cannot use): retrying it changes nothing."""
    log.warning("stripe refused to %s: %s (HTTP %s)", action, exc, exc.http_status)
    return PaymentProviderRefused(f"Stripe refused to {action}: {exc.user_message or exc}")


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


def _account_state(account: Mapping[str, Any]) -> AccountState:
    return AccountState(
        account_id=str(account["id"]),
        charges_enabled=bool(account.get("charges_enabled")),
        payouts_enabled=bool(account.get("payouts_enabled")),
        details_submitted=bool(account.get("details_submitted")),
    )


def map_event(event: Mapping[str, Any]) -> PaymentEvent | AccountEvent:
    """Stripe event -> internal outcome (None: recorded, otherwise ignored). A Connect event
    names its connected account in ``account``."""
    kind = str(event["type"])
    obj: Mapping[str, Any] = event["data"]["object"]
    account = event.get("account")
    if account is not None and not isinstance(account, str):
        raise TypeError(f"account is not an id: {account!r}")
    if kind == "account.updated" and account is not None:  # without: the platform's own
        state = _account_state(obj)
        if account != state.account_id:
            raise ValueError(f"account.updated of {state.account_id} sent for {account}")
        return AccountEvent(str(event["id"]), kind, state)
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
        account_id=account,
    )


def _cents(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"amount_total is not an integer: {value!r}")
    return value
