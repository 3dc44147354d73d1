"""The pages a buyer sees, in a real headless Chromium, through their own buttons and links:
the sandbox's hosted payment page, then the platform's success and cancelled pages or the
seller's own pages named by the checkout's return URLs (allowlisted), with the entitlement the
signed webhook then activates or revokes."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from commerce_support import OWNER, Harness

from coursemesh.chassis.testing import wait_for
from coursemesh.commerce.adapters.tables import entitlements, payment_transactions

#: How long a browser waits for what a background worker (the webhook sender) brings about.
ASYNC_MS = 20_000


async def _status(h: Harness) -> str:
    [row] = await h.rows(entitlements)
    return str(row["status"])


@pytest.fixture
def seller_site() -> Iterator[str]:
    """The seller's own web shop: a page that says which of its URLs the buyer landed on."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"<!doctype html><title>Shop</title><p id='landed'>{self.path}</p>".encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


async def test_a_buyer_pays_in_a_browser_and_lands_on_the_platforms_success_page(
    live: Callable[..., Awaitable[Harness]], browser: Any
) -> None:
    h = await live()
    _, course = await h.shop(price=4900)
    # A buyer of its own: the SMTP server is shared by the session's tests.
    checkout = (await h.checkout(course, "user_browser_payer")).json()
    [txn] = await h.rows(payment_transactions)
    context = await browser.new_context()
    try:
        page = await context.new_page()
        opened = await page.goto(checkout["paymentPageUrl"])
        assert opened is not None
        assert opened.status == 200
        assert await page.title() == "Pay Peak Form Studio"
        assert await page.locator(".item").inner_text() == "30-day reset"
        assert await page.locator(".amount").inner_text() == "49.00 USD"
        assert await _status(h) == "pending"
        async with page.expect_navigation():
            await page.get_by_role("button", name="Pay").click()
        landed = urlsplit(page.url)
        assert (landed.path, landed.query) == (
            "/checkout/success",
            f"session={txn['id']}",
        )
        assert await page.locator(".item").inner_text() == "30-day reset"
        assert await page.locator(".amount").inner_text() == "49.00 USD"
        # The page reloads itself until the provider's signed webhook, sent by a background
        # sender (truly asynchronous), has been applied.
        ready = page.get_by_text("Thank you: your purchase is ready")
        await ready.wait_for(timeout=ASYNC_MS)
        assert "Payment confirmed" in await page.locator(".status").inner_text()
        assert await _status(h) == "active"
        # Back on the hosted page: no button is left to pay twice with.
        await page.goto(checkout["paymentPageUrl"])
        assert "This payment is paid." in await page.locator("main").inner_text()
        assert await page.get_by_role("button").count() == 0
    finally:
        await context.close()


async def test_a_buyer_declines_in_a_browser_and_returns_to_the_cancelled_page(
    live: Callable[..., Awaitable[Harness]], browser: Any
) -> None:
    h = await live()
    _, course = await h.shop(price=1500)
    checkout = (await h.checkout(course, "user_browser_decliner")).json()
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(checkout["paymentPageUrl"])
        async with page.expect_navigation():
            await page.get_by_role("button", name="Decline").click()
        assert "This payment is declined." in await page.locator("main").inner_text()
        async with page.expect_navigation():
            await page.get_by_role("link", name="Cancel and return").click()
        assert urlsplit(page.url).path == "/checkout/cancelled"
        assert await page.title() == "Payment cancelled"
        assert "Nothing was charged." in await page.locator(".status").inner_text()
        # Reloading the hosted page shows the settled state, never the buttons again.
        await page.goto(checkout["paymentPageUrl"])
        assert await page.get_by_role("button").count() == 0
    finally:
        await context.close()

    async def revoked() -> bool:
        return await _status(h) == "revoked"

    # The payment.failed webhook comes from the background sender: truly asynchronous.
    await wait_for(revoked, timeout=20, message="entitlement revoked by the failed payment")


async def test_a_buyer_returns_to_the_sellers_own_pages_named_by_the_checkout(
    live: Callable[..., Awaitable[Harness]], browser: Any, seller_site: str
) -> None:
    h = await live()
    org, course = await h.shop(price=2900)
    allowed = await h.client.put(
        f"/organizations/{org}/return-url-allowlist",
        json={"urls": [f"{seller_site}/shop"]},
        headers=h.auth(OWNER),
    )
    assert allowed.status_code == 200, allowed.text
    buyer = f"user_{uuid.uuid4().hex[:8]}"
    r = await h.client.post(
        f"/courses/{course}/checkout",
        json={
            "successUrl": f"{seller_site}/shop/thanks?session={{CHECKOUT_SESSION_ID}}",
            "cancelUrl": f"{seller_site}/shop/cart",
        },
        headers=h.auth(buyer),
    )
    assert r.status_code == 201, r.text
    [txn] = await h.rows(payment_transactions)
    session = txn["provider_transaction_id"]
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(r.json()["paymentPageUrl"])
        async with page.expect_navigation():
            await page.get_by_role("link", name="Cancel and return").click()
        assert await page.locator("#landed").inner_text() == "/shop/cart"
        await page.go_back()  # the buyer changes their mind: the session is still open
        async with page.expect_navigation():
            await page.get_by_role("button", name="Pay").click()
        assert await page.locator("#landed").inner_text() == f"/shop/thanks?session={session}"
    finally:
        await context.close()

    async def active() -> bool:
        return await _status(h) == "active"

    # The payment.completed webhook comes from the background sender: truly asynchronous.
    await wait_for(active, timeout=20, message="entitlement activated by the signed webhook")
