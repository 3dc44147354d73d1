"""The sandbox provider over real HTTP: hosted page, Pay/Decline, signed webhook delivery by
the background sender, and the receipt delivered to a real SMTP server."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from commerce_support import BUYER, Harness
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from coursemesh.chassis.testing import outbox_events, wait_for
from coursemesh.commerce.adapters.tables import entitlements, sandbox_deliveries


async def test_side_effects_sandbox_pay_activates_and_emails_receipt_to_non_member(
    live: Callable[..., Awaitable[Harness]], smtp_server: Any
) -> None:
    h = await live()
    _, course = await h.shop(price=4900)
    # a buyer of this test only: the SMTP server's mailbox is shared by the session's tests
    buyer = f"{BUYER}-{uuid.uuid4().hex[:8]}"
    checkout = (await h.checkout(course, user=buyer)).json()
    page = await h.client.get(checkout["paymentPageUrl"])
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    for shown in ("30-day reset", "Peak Form Studio", "49.00 USD", '/pay"', "/decline"):
        assert shown.replace('"', "") in page.text
    paid = await h.client.post(checkout["paymentPageUrl"] + "/pay")
    assert paid.status_code == 303  # on to the success page

    async def active() -> bool:
        rows = await h.rows(entitlements)
        return rows[0]["status"] == "active"

    await wait_for(active, timeout=20, message="entitlement activated by the signed webhook")

    async def recorded() -> bool:  # the sender records the answer after the webhook applied
        [delivery] = await h.payment_deliveries()
        return delivery["last_status"] is not None

    await wait_for(recorded, timeout=20, message="the delivery's answer recorded")
    [delivery] = await h.payment_deliveries()
    assert (delivery["last_status"], delivery["attempts"]) == (200, 1)
    email = f"{buyer}@example.com"

    async def received() -> bool:  # the mailbox's own wait_for blocks the loop the app runs on
        return any(m["To"] == email for m in smtp_server.mailbox.messages())

    await wait_for(received, timeout=20, message="receipt in the SMTP server")
    [message] = [m for m in smtp_server.mailbox.messages() if m["To"] == email]
    text = message.get_body(("plain",)).get_content()  # multipart/alternative: text + HTML
    assert "49.00 USD" in text
    assert "30-day reset" in text
    assert "Peak Form Studio" in text
    again = await h.client.post(checkout["paymentPageUrl"] + "/pay")
    assert (again.status_code, again.json()["code"]) == (409, "PAYMENT_SESSION_CLOSED")
    assert len([m for m in smtp_server.mailbox.messages() if m["To"] == email]) == 1


async def test_sandbox_decline_revokes_pending_entitlement(
    live: Callable[..., Awaitable[Harness]],
) -> None:
    h = await live()
    _, course = await h.shop(price=1500)
    checkout = (await h.checkout(course, "user_decliner")).json()
    r = await h.client.post(checkout["paymentPageUrl"] + "/decline")
    assert r.status_code == 200

    async def revoked() -> bool:
        return (await h.rows(entitlements))[0]["status"] == "revoked"

    await wait_for(revoked, timeout=20, message="entitlement revoked by payment.failed")
    assert len(await outbox_events(h.db, "commerce.payment.failed.v1")) == 1
    missing = await h.client.get("/pay/sbx_nope")
    assert (missing.status_code, missing.json()["code"]) == (404, "PAYMENT_SESSION_NOT_FOUND")


async def test_sandbox_webhook_retried_with_backoff_until_2xx(
    live: Callable[..., Awaitable[Harness]],
) -> None:
    """The first attempts go to a port nobody listens on; then the target comes back."""
    from commerce_support import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    h = await live(webhook_target_base_url=dead, webhook_backoff_base_seconds=0.05)
    _, course = await h.shop(price=900)
    checkout = (await h.checkout(course)).json()
    await h.client.post(checkout["paymentPageUrl"] + "/pay")

    async def failed_twice() -> bool:
        rows = await h.payment_deliveries()
        return bool(rows) and rows[0]["attempts"] >= 2

    await wait_for(failed_twice, timeout=20, message="two failed delivery attempts")
    assert (await h.rows(entitlements))[0]["status"] == "pending"
    # The provider's endpoint configuration is fixed: point the queued delivery at the app.
    import sqlalchemy as sa

    async with h.db.engine.begin() as conn:
        await conn.execute(
            sa.update(sandbox_deliveries).values(
                url=sa.func.replace(
                    sandbox_deliveries.c.url, dead, str(h.client.base_url).rstrip("/")
                )
            )
        )

    async def active() -> bool:
        return (await h.rows(entitlements))[0]["status"] == "active"

    await wait_for(active, timeout=30, message="delivered after retries")

    async def recorded() -> bool:  # the sender records its attempt after the 2xx it got
        return (await h.payment_deliveries())[0]["delivered_at"] is not None

    await wait_for(recorded, timeout=10, message="the delivery recorded as delivered")
    [delivery] = await h.payment_deliveries()
    assert delivery["attempts"] >= 3
    assert delivery["last_status"] == 200


@pytest.fixture
def captured_spans() -> Iterator[InMemorySpanExporter]:
    """Every span the process finishes while the test runs (on the global SDK provider the
    app installs; set up here when no app has installed it yet)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        from coursemesh.chassis.telemetry import setup_tracing

        provider = setup_tracing(service="commerce", instance_id="test", exporter="none")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # the processor stays registered but records nothing more


def _hex(span: ReadableSpan, parent: bool = False) -> str | None:
    ctx = span.parent if parent else span.get_span_context()
    return None if ctx is None else f"{ctx.span_id:016x}"


async def test_sandbox_webhook_continues_the_pay_requests_trace(
    live: Callable[..., Awaitable[Harness]], captured_spans: InMemorySpanExporter
) -> None:
    """Pay (with a caller's traceparent) -> delivery row keeps the context -> the sender's
    CLIENT span -> commerce's webhook SERVER span -> the activation's publish: one trace."""
    h = await live()
    org, course = await h.shop(price=2500)

    def spans() -> list[ReadableSpan]:
        return list(captured_spans.get_finished_spans())

    def webhook_servers() -> list[ReadableSpan]:
        return [
            s
            for s in spans()
            if s.kind is trace.SpanKind.SERVER
            and str((s.attributes or {}).get("http.target", "")).startswith(
                f"/webhooks/payments/{org}"
            )
        ]

    async def onboarding_told() -> bool:  # the onboarding's account.updated, sent apart
        told = [
            r for r in await h.rows(sandbox_deliveries) if r not in await h.payment_deliveries()
        ]
        return bool(told) and told[0]["delivered_at"] is not None

    await wait_for(onboarding_told, timeout=20, message="the onboarding's webhook delivered")
    earlier = len(webhook_servers())
    checkout = (await h.checkout(course)).json()
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    paid = await h.client.post(
        checkout["paymentPageUrl"] + "/pay",
        headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
    )
    assert paid.status_code == 303
    [delivery] = await h.payment_deliveries()
    assert delivery["trace_context"]["traceparent"].split("-")[1] == trace_id

    def activation_publishes() -> list[ReadableSpan]:
        return [
            s
            for s in spans()
            if s.kind is trace.SpanKind.PRODUCER
            and s.name.startswith("commerce.entitlement.changed.v2")
            and f"{s.context.trace_id:032x}" == trace_id
        ]

    async def delivered() -> bool:
        return len(webhook_servers()) > earlier

    await wait_for(delivered, timeout=20, message="the webhook request served")
    [hook] = webhook_servers()[earlier:]
    assert f"{hook.context.trace_id:032x}" == trace_id, "the webhook started a new trace"

    async def published() -> bool:
        return bool(activation_publishes())

    await wait_for(published, timeout=20, message="the activation published in the pay trace")
    assert (await h.rows(entitlements))[0]["status"] == "active"
    by_id = {_hex(s): s for s in spans() if f"{s.context.trace_id:032x}" == trace_id}
    client = by_id[_hex(hook, parent=True)]
    assert client.kind is trace.SpanKind.CLIENT
    assert (client.attributes or {}).get("http.status_code") == 200
    pay_server = by_id[_hex(client, parent=True)]
    assert pay_server.kind is trace.SpanKind.SERVER
    assert str((pay_server.attributes or {}).get("http.target", "")).endswith("/pay")
    assert _hex(pay_server, parent=True) == caller_span
    [publish] = activation_publishes()

    def descends(span: ReadableSpan, ancestor: ReadableSpan) -> bool:
        current: ReadableSpan | None = span
        while current is not None:
            if current is ancestor:
                return True
            current = by_id.get(_hex(current, parent=True))
        return False

    assert descends(publish, hook), "the activation's publish is not under the webhook request"
