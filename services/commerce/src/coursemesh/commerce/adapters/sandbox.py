"""The sandbox payment provider: a hosted payment page served by commerce itself and real
Standard Webhooks deliveries (signed, retried with backoff until a 2xx), as a provider does.

It follows Stripe Connect's model: each organization gets a connected account (``acct_sbx_…``),
onboarded on a hosted page of the sandbox's (``/pay/accounts/{id}/onboarding``: submitting it
enables charges and sends a signed ``account.updated``); a payment session is opened on the
seller's account and every event names that account (``account``). After Pay the buyer is
redirected (303) to the checkout's success URL (``{CHECKOUT_SESSION_ID}`` replaced, as Stripe
does); the page's "Cancel and return" link leads to its cancel URL.

It shares commerce's database only for its own tables (``sandbox_*``); everything it tells
commerce goes over HTTP to the webhook URL, exactly like an external provider.

Trace continuity: the trace context of the Pay/Decline request is stored with the delivery row
(``trace_context``), and each delivery attempt is a ``CLIENT`` span under that context whose
``traceparent``/``tracestate`` go out with the webhook, so the buyer's trace continues into the
webhook request and everything it causes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import html
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import sqlalchemy as sa
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook, WebhookVerificationError

from coursemesh.chassis.db import Database
from coursemesh.chassis.errors import Conflict, NotFound
from coursemesh.chassis.transaction import Record, Transaction
from coursemesh.commerce.adapters.tables import (
    sandbox_accounts,
    sandbox_deliveries,
    sandbox_sessions,
)
from coursemesh.commerce.app.ports import (
    ExpiryOutcome,
    HostedPayment,
    HostedPaymentRequest,
    OnboardingLink,
    ProviderName,
    RefundRequest,
    WebhookRejected,
)
from coursemesh.commerce.domain.accounts import AccountEvent, AccountState
from coursemesh.commerce.domain.payments import Outcome, PaymentEvent
from coursemesh.commerce.domain.pricing import format_amount
from coursemesh.commerce.domain.return_urls import with_session

log = logging.getLogger("coursemesh.commerce.sandbox")
tracer = trace.get_tracer("coursemesh.commerce.sandbox")

# Sandbox event type -> internal outcome.
EVENT_OUTCOMES: dict[str, Outcome] = {
    "payment.completed": "completed",
    "payment.failed": "failed",
    "payment.refunded": "refunded",
    "checkout.expired": "expired",
}


class SandboxEventData(msgspec.Struct, frozen=True, rename="camel"):
    session_id: str
    amount_in_cents: int
    currency: str
    metadata: dict[str, str] | None = None
    failure_reason: str | None = None


class SandboxAccountData(msgspec.Struct, frozen=True, rename="camel"):
    account_id: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool


class SandboxEvent(msgspec.Struct, frozen=True):
    """The body of every sandbox webhook (``event_body``, ``account_event_body``): ``data`` is
    a :class:`SandboxAccountData` for ``account.updated``, a :class:`SandboxEventData` for the
    rest; ``account`` is the connected account it happened on."""

    id: str
    type: str
    data: msgspec.Raw
    account: str | None = None


ACCOUNT_UPDATED = "account.updated"
#: How long an onboarding link of the sandbox may be followed (Stripe's are minutes too).
ONBOARDING_LINK_TTL = timedelta(minutes=10)


def organization_webhook_secret(key: str, organization_id: uuid.UUID) -> str:
    """The org's Standard Webhooks secret (``whsec_`` + base64), derived from the sandbox key."""
    digest = hmac.new(key.encode(), str(organization_id).encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(digest).decode()


def sign(secret: str, msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


def event_body(
    event_type: str, session_row: Mapping[Any, Any], failure_reason: str | None = None
) -> tuple[str, str]:
    event_id = f"evt_{uuid.uuid4().hex}"
    body = {
        "id": event_id,
        "type": event_type,
        "account": session_row.get("account_id"),
        "data": {
            "sessionId": session_row["id"],
            "amountInCents": session_row["amount_in_cents"],
            "currency": session_row["currency"],
            "metadata": session_row["metadata"],
            "failureReason": failure_reason,
        },
    }
    return event_id, json.dumps(body, separators=(",", ":"))


def account_event_body(account: Mapping[Any, Any]) -> tuple[str, str]:
    """An ``account.updated`` of a sandbox account (enabled: charges, payouts, details)."""
    event_id = f"evt_{uuid.uuid4().hex}"
    enabled = account["status"] == "enabled"
    body = {
        "id": event_id,
        "type": ACCOUNT_UPDATED,
        "account": account["id"],
        "data": {
            "accountId": account["id"],
            "chargesEnabled": enabled,
            "payoutsEnabled": enabled,
            "detailsSubmitted": enabled,
        },
    }
    return event_id, json.dumps(body, separators=(",", ":"))


def _state(account_id: str, status: str | None) -> AccountState:
    enabled = status == "enabled"
    return AccountState(account_id, enabled, enabled, enabled)


_OPEN_SESSION = """
INSERT INTO sandbox_sessions (id, organization_id, seller_name, seller_logo_url, description,
                              amount_in_cents, currency, metadata, status, expires_at,
                              account_id, application_fee_in_cents, success_url, cancel_url)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, 'open', $9, $10, $11, $12, $13)
"""
_OPEN_ACCOUNT = """
INSERT INTO sandbox_accounts (id, organization_id, business_name, status)
VALUES ($1, $2, $3, 'onboarding')
"""
_ACCOUNT_STATUS = "SELECT status FROM sandbox_accounts WHERE id = $1"
_LINK_ACCOUNT = """
UPDATE sandbox_accounts SET return_url = $2, refresh_url = $3, link_expires_at = $4
 WHERE id = $1
"""
_LOCK_SESSION_STATUS = "SELECT status FROM sandbox_sessions WHERE id = $1 FOR UPDATE"
_EXPIRE_SESSION = "UPDATE sandbox_sessions SET status = 'expired' WHERE id = $1"
# A paid session refunded, read back for its webhook (metadata as text: a driver may not decode
# jsonb).
_REFUND_SESSION = """
UPDATE sandbox_sessions SET status = 'refunded' WHERE id = $1 AND status = 'paid'
RETURNING id, organization_id, amount_in_cents, currency, metadata::text AS metadata, account_id
"""
_QUEUE_DELIVERY = """
INSERT INTO sandbox_webhook_deliveries (id, organization_id, url, body, trace_context)
VALUES ($1, $2, $3, $4, $5::text::jsonb)
"""


def _no_op() -> None:
    return None


@dataclass
class SandboxProvider:
    public_base_url: str
    webhook_base_url: str
    webhook_key: str
    name: ProviderName = "sandbox"
    #: called after a commit that queued a delivery (wakes the webhook sender)
    on_queued: Callable[[], None] = field(default=_no_op, repr=False)

    async def create_hosted_payment(
        self, tx: Transaction, request: HostedPaymentRequest
    ) -> HostedPayment:
        session_id = f"sbx_{uuid.uuid4().hex}"
        driver = await tx.driver()
        await driver.execute(
            _OPEN_SESSION,
            session_id,
            request.organization_id,
            request.seller_name,
            request.seller_logo_url,
            request.description,
            request.amount_in_cents,
            request.currency,
            json.dumps(request.metadata),
            request.expires_at,
            request.account_id,
            request.application_fee_in_cents,
            request.success_url,
            request.cancel_url,
        )
        return HostedPayment(session_id, f"{self.public_base_url.rstrip('/')}/pay/{session_id}")

    async def create_account(
        self, tx: Transaction, organization_id: uuid.UUID, seller_name: str
    ) -> AccountState:
        account_id = f"acct_sbx_{uuid.uuid4().hex[:16]}"
        driver = await tx.driver()
        await driver.execute(_OPEN_ACCOUNT, account_id, organization_id, seller_name)
        return _state(account_id, "onboarding")

    async def retrieve_account(self, tx: Transaction, account_id: str) -> AccountState:
        driver = await tx.driver()
        return _state(account_id, await driver.fetchval(_ACCOUNT_STATUS, account_id))

    async def onboarding_link(
        self, tx: Transaction, account_id: str, return_url: str, refresh_url: str
    ) -> OnboardingLink:
        """The sandbox's onboarding page for the account; the latest link's URLs and expiry
        are the account's (a new link replaces the one before)."""
        expires = datetime.now(UTC) + ONBOARDING_LINK_TTL
        driver = await tx.driver()
        await driver.execute(_LINK_ACCOUNT, account_id, return_url, refresh_url, expires)
        url = f"{self.public_base_url.rstrip('/')}/pay/accounts/{account_id}/onboarding"
        return OnboardingLink(url, expires)

    def verify_webhook(
        self, organization_id: uuid.UUID | None, body: bytes, headers: Mapping[str, str]
    ) -> PaymentEvent | AccountEvent:
        if organization_id is None:
            raise WebhookRejected("The sandbox signs for one organization's URL only")
        secret = organization_webhook_secret(self.webhook_key, organization_id)
        try:
            # Parsed below, apart: a signed body that is not an event is malformed, not forged.
            Webhook(secret).verify(body, dict(headers), json_parse=False)
        except WebhookVerificationError as exc:
            stale = "too old" in str(exc) or "too new" in str(exc)
            raise WebhookRejected(
                f"Webhook rejected: {exc}",
                code="WEBHOOK_TIMESTAMP_STALE" if stale else "WEBHOOK_SIGNATURE_INVALID",
            ) from None
        except (ValueError, TypeError) as exc:
            raise WebhookRejected(f"Webhook rejected: {exc}") from None
        try:
            parsed = msgspec.json.decode(body, type=SandboxEvent)
            if parsed.type == ACCOUNT_UPDATED:
                acct = msgspec.json.decode(parsed.data, type=SandboxAccountData)
                if parsed.account != acct.account_id:
                    raise msgspec.ValidationError("account.updated names another account")
                state = AccountState(
                    acct.account_id,
                    acct.charges_enabled,
                    acct.payouts_enabled,
                    acct.details_submitted,
                )
                return AccountEvent(parsed.id, parsed.type, state)
            data = msgspec.json.decode(parsed.data, type=SandboxEventData)
        except msgspec.DecodeError as exc:
            raise WebhookRejected(
                f"Webhook body is not a sandbox event: {exc}", code="WEBHOOK_MALFORMED"
            ) from None
        return PaymentEvent(
            provider_event_id=parsed.id,
            type=parsed.type,
            outcome=EVENT_OUTCOMES.get(parsed.type),
            provider_transaction_id=data.session_id,
            metadata=data.metadata or {},
            failure_reason=data.failure_reason,
            amount_in_cents=data.amount_in_cents,
            currency=data.currency.upper(),
            account_id=parsed.account,
        )

    async def confirm_event(self, tx: Transaction, event: PaymentEvent) -> None:
        """Refuse a completion of a session that this provider's page did not settle as paid:
        the signature proves only the key, and a completion is the event that grants access."""
        if event.outcome != "completed":
            return
        driver = await tx.driver()
        status = await driver.fetchval(
            "SELECT status FROM sandbox_sessions WHERE id = $1", event.provider_transaction_id
        )
        if status != "paid":
            raise Conflict(
                f"The sandbox did not settle payment session {event.provider_transaction_id}"
                f" (it is {status or 'unknown'})",
                code="WEBHOOK_SESSION_NOT_SETTLED",
            )

    async def expire_hosted_payment(
        self, tx: Transaction, provider_transaction_id: str, account_id: str | None
    ) -> ExpiryOutcome:
        """An open session becomes ``expired`` in the checkout's transaction (its page shows it
        expired, its Pay and Decline are refused; no webhook). A session its page settled as
        paid is ``completed``; any other (declined, expired, refunded, unknown) can no longer
        be paid. The row lock orders this with a concurrent Pay of the same session."""
        driver = await tx.driver()
        status = await driver.fetchval(_LOCK_SESSION_STATUS, provider_transaction_id)
        if status == "paid":
            return "completed"
        if status == "open":
            await driver.execute(_EXPIRE_SESSION, provider_transaction_id)
        return "expired"

    async def refund_payment(self, tx: Transaction, request: RefundRequest) -> None:
        """A paid session becomes ``refunded`` and a signed ``payment.refunded`` webhook is
        queued, in the webhook's transaction; a session not paid (refunded before) is left
        as it is."""
        driver = await tx.driver()
        row = await driver.fetchrow(_REFUND_SESSION, request.provider_transaction_id)
        if row is None:
            return
        session = {**row, "metadata": json.loads(row["metadata"])}
        event_id, body = event_body("payment.refunded", session, request.reason)
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        await driver.execute(
            _QUEUE_DELIVERY,
            event_id,
            row["organization_id"],
            self.webhook_url(row["organization_id"]),
            body,
            json.dumps(carrier) if carrier else None,
        )
        tx.after_commit(self.on_queued)

    def webhook_url(self, organization_id: uuid.UUID) -> str:
        return f"{self.webhook_base_url.rstrip('/')}/webhooks/payments/{organization_id}"


# --- the hosted page ----------------------------------------------------------------------


_SESSION = f"SELECT * FROM {sandbox_sessions.name} WHERE id = $1"
_NEXT_DUE = (
    f"SELECT min(next_attempt_at) FROM {sandbox_deliveries.name}"
    " WHERE delivered_at IS NULL AND gave_up_at IS NULL"
)


async def load_session(db: Database, session_id: str) -> Record:
    async with db.reading() as conn:
        row = await conn.fetchrow(_SESSION, session_id)
    if row is None:
        raise NotFound("No such payment session", code="PAYMENT_SESSION_NOT_FOUND")
    return row


def render_page(row: Mapping[Any, Any], now: datetime) -> str:
    e = html.escape
    amount = format_amount(row["amount_in_cents"], row["currency"])
    logo = (
        f'<img src="{e(row["seller_logo_url"])}" alt="" height="48">'
        if row["seller_logo_url"]
        else ""
    )
    cancel = row.get("cancel_url")
    back = f'<p><a class="cancel" href="{e(cancel)}">Cancel and return</a></p>' if cancel else ""
    if row["status"] == "open" and row["expires_at"] > now:
        actions = (
            f'<form method="post" action="/pay/{e(row["id"])}/pay">'
            '<button type="submit">Pay</button></form>'
            f'<form method="post" action="/pay/{e(row["id"])}/decline">'
            '<button type="submit">Decline</button></form>'
        ) + back
    else:
        state = "expired" if row["status"] == "open" else row["status"]
        actions = f"<p>This payment is {e(state)}.</p>" + (back if state != "paid" else "")
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Pay {e(row['seller_name'])}</title></head><body>"
        f"<header>{logo}<h1>{e(row['seller_name'])}</h1></header>"
        f"<main><p class='item'>{e(row['description'])}</p>"
        f"<p class='amount'>{e(amount)}</p>{actions}</main>"
        "<footer>coursemesh sandbox payments: no money moves.</footer></body></html>"
    )


async def settle_session(
    db: Database, provider: SandboxProvider, session_id: str, *, paid: bool, now: datetime
) -> Mapping[Any, Any]:
    """Pay or decline an open session: mark it and queue the signed webhook delivery."""
    async with db.unit_of_work() as uow:
        row = (
            (
                await uow.session.execute(
                    sa.select(sandbox_sessions)
                    .where(sandbox_sessions.c.id == session_id)
                    .with_for_update()
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound("No such payment session", code="PAYMENT_SESSION_NOT_FOUND")
        if row["status"] == "expired":
            raise Conflict("This payment session has expired", code="PAYMENT_SESSION_EXPIRED")
        if row["status"] != "open":
            raise Conflict(
                f"This payment is already {row['status']}", code="PAYMENT_SESSION_CLOSED"
            )
        if row["expires_at"] <= now:
            raise Conflict("This payment session has expired", code="PAYMENT_SESSION_EXPIRED")
        status = "paid" if paid else "declined"
        await uow.session.execute(
            sa.update(sandbox_sessions)
            .where(sandbox_sessions.c.id == session_id)
            .values(status=status)
        )
        await enqueue_webhook(
            uow.session,
            provider,
            row,
            "payment.completed" if paid else "payment.failed",
            None if paid else "card_declined",
        )
        return {**row, "status": status}


async def enqueue_webhook(
    session: AsyncSession,
    provider: SandboxProvider,
    row: Mapping[Any, Any],
    event_type: str,
    failure_reason: str | None = None,
) -> str:
    event_id, body = event_body(event_type, row, failure_reason)
    await _queue(session, provider, row["organization_id"], event_id, body)
    return event_id


async def _queue(
    session: AsyncSession,
    provider: SandboxProvider,
    organization_id: uuid.UUID,
    event_id: str,
    body: str,
) -> None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)  # the current request's trace, continued by the sender
    await session.execute(
        sa.insert(sandbox_deliveries).values(
            id=event_id,
            organization_id=organization_id,
            url=provider.webhook_url(organization_id),
            body=body,
            trace_context=carrier or None,
        )
    )


@dataclass
class SandboxPages:
    """The hosted page's two requests: show a session, settle it (then wake the sender)."""

    db: Database
    provider: SandboxProvider
    webhooks_wake: asyncio.Event

    async def show(self, session_id: str) -> str:
        row = await load_session(self.db, session_id)
        return render_page(dict(row.items()), datetime.now(UTC))

    async def settle(self, session_id: str, *, paid: bool) -> Settled:
        """Pay or decline; a paid session sends its buyer on to its success URL."""
        row = await settle_session(
            self.db, self.provider, session_id, paid=paid, now=datetime.now(UTC)
        )
        self.webhooks_wake.set()
        success = row.get("success_url")
        redirect = with_session(success, session_id) if paid and success else None
        return Settled(render_page(row, datetime.now(UTC)), redirect)

    async def onboarding(self, account_id: str) -> Settled:
        """The account's onboarding form; an expired link sends its seller to the refresh URL
        (where they ask for a new link)."""
        async with self.db.reading() as conn:
            row = await conn.fetchrow(
                f"SELECT * FROM {sandbox_accounts.name} WHERE id = $1", account_id
            )
        if row is None or row["link_expires_at"] is None:
            raise NotFound("No such onboarding link", code="ONBOARDING_LINK_NOT_FOUND")
        if row["link_expires_at"] <= datetime.now(UTC):
            return Settled(_expired_link_page(), row["refresh_url"])
        return Settled(render_onboarding(dict(row.items())), None)

    async def complete_onboarding(self, account_id: str) -> Settled:
        """Submit the form: the account is enabled and a signed ``account.updated`` queued;
        the seller goes on to the link's return URL."""
        async with self.db.unit_of_work() as uow:
            row = (
                (
                    await uow.session.execute(
                        sa.select(sandbox_accounts)
                        .where(sandbox_accounts.c.id == account_id)
                        .with_for_update()
                    )
                )
                .mappings()
                .first()
            )
            if row is None or row["link_expires_at"] is None:
                raise NotFound("No such onboarding link", code="ONBOARDING_LINK_NOT_FOUND")
            if row["link_expires_at"] <= datetime.now(UTC):
                return Settled(_expired_link_page(), row["refresh_url"])
            if row["status"] != "enabled":
                await uow.session.execute(
                    sa.update(sandbox_accounts)
                    .where(sandbox_accounts.c.id == account_id)
                    .values(status="enabled")
                )
                event_id, body = account_event_body({**row, "status": "enabled"})
                await _queue(uow.session, self.provider, row["organization_id"], event_id, body)
        self.webhooks_wake.set()
        return Settled(_onboarded_page(), row["return_url"])


@dataclass(frozen=True)
class Settled:
    """A page of the sandbox, and where the browser goes next (None: it stays)."""

    page: str
    redirect: str | None


def render_onboarding(row: Mapping[Any, Any]) -> str:
    e = html.escape
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<title>Set up payments</title></head><body>"
        f"<h1>Set up payments for {e(row['business_name'] or 'your business')}</h1>"
        f"<p>Account <code>{e(row['id'])}</code>. In the sandbox no details are needed:"
        " submitting enables charges and payouts.</p>"
        f'<form method="post" action="/pay/accounts/{e(row["id"])}/onboarding">'
        '<button type="submit">Submit details</button></form>'
        "<footer>coursemesh sandbox payments: no money moves.</footer></body></html>"
    )


def _expired_link_page() -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Link expired</title></head>"
        "<body><p>This onboarding link has expired; ask for a new one.</p></body></html>"
    )


def _onboarded_page() -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Details submitted</title>"
        "</head><body><p>Your details were submitted: charges and payouts are enabled.</p>"
        "</body></html>"
    )


# --- the delivery worker -----------------------------------------------------------------


@dataclass
class WebhookSender:
    db: Database
    provider: SandboxProvider
    wake: asyncio.Event
    max_attempts: int = 8
    backoff_base: float = 0.5
    backoff_cap: float = 300.0
    idle_wait: float = 5.0

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=10.0) as client:
            while True:
                delivered = await self.deliver_due(client)
                if delivered == 0:
                    self.wake.clear()
                    # The wait is computed first: a wait() coroutine made before a failing
                    # query would never be awaited.
                    timeout = await self._next_wait()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), timeout=timeout)

    async def _next_wait(self) -> float:
        async with self.db.reading() as conn:
            due = await conn.fetchval(_NEXT_DUE)
        if due is None:
            return self.idle_wait
        wait: float = (due - datetime.now(UTC)).total_seconds()
        return max(0.01, min(self.idle_wait, wait))

    async def deliver_due(self, client: httpx.AsyncClient, limit: int = 20) -> int:
        """Attempt every due delivery once; rows are claimed with SKIP LOCKED (replicas)."""
        attempted = 0
        async with self.db.unit_of_work() as uow:
            rows = (
                (
                    await uow.session.execute(
                        sa.select(sandbox_deliveries)
                        .where(
                            sandbox_deliveries.c.delivered_at.is_(None),
                            sandbox_deliveries.c.gave_up_at.is_(None),
                            sandbox_deliveries.c.next_attempt_at <= sa.func.now(),
                        )
                        .order_by(sandbox_deliveries.c.next_attempt_at)
                        .limit(limit)
                        .with_for_update(skip_locked=True)
                    )
                )
                .mappings()
                .all()
            )
            for row in rows:
                attempted += 1
                await uow.session.execute(
                    sa.update(sandbox_deliveries)
                    .where(sandbox_deliveries.c.id == row["id"])
                    .values(**await self._attempt(client, row))
                )
        return attempted

    async def _attempt(self, client: httpx.AsyncClient, row: Mapping[Any, Any]) -> dict[str, Any]:
        now = datetime.now(UTC)
        secret = organization_webhook_secret(self.provider.webhook_key, row["organization_id"])
        headers = {"content-type": "application/json", **sign(secret, row["id"], row["body"], now)}
        attempts = row["attempts"] + 1
        # Parent: the request that queued the delivery (a new trace when none was stored).
        stored = row["trace_context"]
        parent = propagate.extract(stored) if stored else Context()
        with tracer.start_as_current_span(
            "POST",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes={
                "http.method": "POST",
                "http.url": row["url"],
                "webhook.id": row["id"],
                "webhook.attempt": attempts,
            },
        ) as span:
            propagate.inject(headers)  # traceparent (this span) + tracestate
            try:
                response = await client.post(row["url"], content=row["body"], headers=headers)
                status, error = (
                    response.status_code,
                    None if response.is_success else response.text[:500],
                )
                span.set_attribute("http.status_code", status)
                if not response.is_success:
                    span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
            except httpx.HTTPError as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, error[:200]))
        if status is not None and 200 <= status < 300:
            return {"attempts": attempts, "last_status": status, "delivered_at": now}
        values: dict[str, Any] = {"attempts": attempts, "last_status": status, "last_error": error}
        if attempts >= self.max_attempts:
            log.error(
                "sandbox webhook %s gave up after %d attempts: %s", row["id"], attempts, error
            )
            values["gave_up_at"] = now
        else:
            delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempts - 1))
            values["next_attempt_at"] = now + timedelta(seconds=delay)
            log.warning(
                "sandbox webhook %s attempt %d failed (%s); retry in %.1fs",
                row["id"],
                attempts,
                status,
                delay,
            )
        return values
