"""The sandbox's hosted payment page as a buyer sees it: in a real headless Chromium, through
the page's own buttons, with the entitlement the signed webhook then activates or revokes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from commerce_support import Harness

from coursemesh.chassis.testing import wait_for
from coursemesh.commerce.adapters.tables import entitlements


async def _status(h: Harness) -> str:
    [row] = await h.rows(entitlements)
    return str(row["status"])


async def test_a_buyer_pays_on_the_hosted_page_in_a_browser(
    live: Callable[..., Awaitable[Harness]], browser: Any
) -> None:
    h = await live()
    _, course = await h.shop(price=4900)
    # A buyer of its own: the SMTP server is shared by the session's tests.
    checkout = (await h.checkout(course, "user_browser_payer")).json()
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
        assert await page.locator("main").inner_text() == (
            "30-day reset\n\n49.00 USD\n\nThis payment is paid."
        )
        # No button is left to pay twice with.
        assert await page.get_by_role("button").count() == 0
    finally:
        await context.close()

    async def active() -> bool:
        return await _status(h) == "active"

    # The provider's signed webhook is delivered by a background sender: truly asynchronous.
    await wait_for(active, timeout=20, message="entitlement activated by the signed webhook")


async def test_a_buyer_declines_on_the_hosted_page_in_a_browser(
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
        # Reloading the page shows the settled state, never the buttons again.
        await page.goto(checkout["paymentPageUrl"])
        assert await page.get_by_role("button").count() == 0
    finally:
        await context.close()

    async def revoked() -> bool:
        return await _status(h) == "revoked"

    # The payment.failed webhook comes from the background sender: truly asynchronous.
    await wait_for(revoked, timeout=20, message="entitlement revoked by the failed payment")
