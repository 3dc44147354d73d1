"""The sandbox provider over real HTTP: hosted page, Pay/Decline, signed webhook delivery by
the background sender, and the receipt delivered to a real SMTP server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from commerce_support import BUYER, Harness

from coursemesh.chassis.testing import outbox_events, wait_for
from coursemesh.commerce.adapters.tables import entitlements, sandbox_deliveries


async def test_side_effects_sandbox_pay_activates_and_emails_receipt_to_non_member(
    live: Callable[..., Awaitable[Harness]], smtp_server: Any
) -> None:
    h = await live()
    _, course = await h.shop(price=4900)
    checkout = (await h.checkout(course)).json()
    page = await h.client.get(checkout["paymentPageUrl"])
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    for shown in ("30-day reset", "Peak Form Studio", "49.00 USD", '/pay"', "/decline"):
        assert shown.replace('"', "") in page.text
    paid = await h.client.post(checkout["paymentPageUrl"] + "/pay")
    assert paid.status_code == 200

    async def active() -> bool:
        rows = await h.rows(entitlements)
        return rows[0]["status"] == "active"

    await wait_for(active, timeout=20, message="entitlement activated by the signed webhook")
    [delivery] = await h.rows(sandbox_deliveries)
    assert (delivery["last_status"], delivery["attempts"]) == (200, 1)
    email = f"{BUYER}@example.com"

    async def received() -> bool:  # the mailbox's own wait_for blocks the loop the app runs on
        return any(m["To"] == email for m in smtp_server.mailbox.messages())

    await wait_for(received, timeout=20, message="receipt in the SMTP server")
    [message] = [m for m in smtp_server.mailbox.messages() if m["To"] == email]
    text = message.get_content()
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
        rows = await h.rows(sandbox_deliveries)
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
    [delivery] = await h.rows(sandbox_deliveries)
    assert delivery["attempts"] >= 3
    assert delivery["last_status"] == 200
