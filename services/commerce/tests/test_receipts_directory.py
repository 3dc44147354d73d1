"""Every paid buyer gets a receipt, in the currency's own minor unit: a JPY price is 4,900 JPY
on the page and in the mail; a buyer whose token had no email gets the receipt at the address
the buyer directory gives (the dev directory of `make up`, or Clerk's API)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from clerk_support import SECRET_KEY, clerk_user, fake_clerk
from commerce_support import TRAINER, Harness

from coursemesh.chassis.testing import wait_for
from coursemesh.commerce.adapters.mailer import ReceiptSender
from coursemesh.commerce.adapters.sandbox import organization_webhook_secret, sign
from coursemesh.commerce.adapters.tables import entitlements, payment_transactions, receipts


async def jpy_shop(h: Harness, price: int) -> tuple[uuid.UUID, uuid.UUID]:
    org = await h.catalog.organization(name="Tokyo Dojo", currency="JPY")
    await h.catalog.member(org, TRAINER)
    await h.onboard(org)
    course = await h.catalog.course(org)
    r = await h.client.patch(
        f"/organizations/{org}/courses/{course}/price",
        json={"priceInCents": price},
        headers=h.auth(TRAINER),
    )
    assert (r.status_code, r.json()["currency"]) == (200, "JPY"), r.text
    return org, course


async def complete(h: Harness, org: uuid.UUID, txn: dict[str, Any]) -> None:
    """The sandbox's signed payment.completed, as its sender would post it."""
    body = json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex}",
            "type": "payment.completed",
            "account": txn["provider_account_id"],
            "data": {
                "sessionId": txn["provider_transaction_id"],
                "amountInCents": txn["amount_in_cents"],
                "currency": txn["currency"],
                "metadata": txn["metadata"],
                "failureReason": None,
            },
        }
    )
    assert h.settings.sandbox_webhook_key is not None
    secret = organization_webhook_secret(h.settings.sandbox_webhook_key, org)
    headers = sign(secret, f"msg_{uuid.uuid4().hex}", body, datetime.now(UTC))
    r = await h.client.post(
        f"/webhooks/payments/{org}",
        content=body,
        headers={**headers, "content-type": "application/json"},
    )
    assert (r.status_code, r.json()) == (200, {"status": "applied"}), r.text


async def test_a_jpy_price_is_4900_yen_on_the_page_and_in_the_receipt(
    harness: Harness, smtp_server: Any
) -> None:
    org, course = await jpy_shop(harness, 4900)
    buyer = f"user_{uuid.uuid4().hex[:8]}"
    to = f"{buyer}@example.com"
    r = await harness.client.post(
        f"/courses/{course}/checkout", headers=harness.auth(buyer, email=to)
    )
    assert r.status_code == 201, r.text
    [txn] = await harness.rows(payment_transactions, payment_transactions.c.user_id == buyer)
    assert (txn["amount_in_cents"], txn["currency"]) == (4900, "JPY")
    page = await harness.client.get(f"/pay/{txn['provider_transaction_id']}")
    assert "4,900 JPY" in page.text
    assert "49.00" not in page.text
    paid = await harness.client.post(f"/pay/{txn['provider_transaction_id']}/pay")
    assert paid.status_code == 200, paid.text
    await complete(harness, org, txn)
    [queued] = await harness.rows(receipts, receipts.c.transaction_id == txn["id"])
    assert "Amount: 4,900 JPY" in queued["body"]
    sender = ReceiptSender(
        harness.db, smtp_server.host, smtp_server.port, "receipts@shop.example", asyncio.Event()
    )
    assert await sender.send_due() >= 1
    [mail] = [m for m in smtp_server.mailbox.messages() if m["To"] == to]
    text = mail.get_body(("plain",)).get_content()
    assert "4,900 JPY" in text
    assert "49.00" not in text
    assert "4,900 JPY" in mail.get_body(("html",)).get_content()


async def checkout_without_email(h: Harness, buyer: str, price: int = 4900) -> None:
    """A paid sandbox checkout whose token carries no ``email`` claim, paid on the page."""
    _, course = await h.shop(price=price)
    r = await h.client.post(f"/courses/{course}/checkout", headers=h.auth(buyer))
    assert r.status_code == 201, r.text
    [txn] = await h.rows(payment_transactions, payment_transactions.c.user_id == buyer)
    assert txn["buyer_email"] is None
    paid = await h.client.post(r.json()["paymentPageUrl"] + "/pay")
    assert paid.status_code == 303, paid.text

    async def active() -> bool:
        return any(e["status"] == "active" for e in await h.rows(entitlements))

    await wait_for(active, timeout=20, message="entitlement activated by the signed webhook")


async def received(smtp_server: Any, to: str) -> Any:
    async def arrived() -> bool:  # the mailbox's own wait_for blocks the loop the app runs on
        return any(m["To"] == to for m in smtp_server.mailbox.messages())

    await wait_for(arrived, timeout=20, message=f"receipt to {to} in the SMTP server")
    [message] = [m for m in smtp_server.mailbox.messages() if m["To"] == to]
    return message


async def marked_sent(h: Harness) -> dict[str, Any]:
    """The receipt's row once the worker has recorded the send: it marks the row only after
    the SMTP server accepted the mail, so the mail can be in the mailbox a moment before."""

    async def marked() -> bool:
        return [r["sent_at"] is not None for r in await h.rows(receipts)] == [True]

    await wait_for(marked, timeout=20, message="the receipt marked sent by its worker")
    [row] = await h.rows(receipts)
    return dict(row)


async def test_a_buyer_without_an_email_claim_gets_the_receipt_at_the_dev_directorys_address(
    live: Callable[..., Awaitable[Harness]], smtp_server: Any
) -> None:
    # the sandbox's default directory, as `make up` runs it: no identity settings at all
    h = await live(dev_email_domain="users.dev.example")
    assert h.settings.buyer_directory == "dev"
    buyer = f"user_{uuid.uuid4().hex[:8]}"
    await checkout_without_email(h, buyer)
    to = f"{buyer}@users.dev.example"
    message = await received(smtp_server, to)
    assert "49.00 USD" in message.get_body(("plain",)).get_content()
    row = await marked_sent(h)
    assert (row["email"], row["last_error"]) == (to, None)


async def test_a_buyer_without_an_email_claim_gets_the_receipt_at_their_clerk_address(
    live: Callable[..., Awaitable[Harness]], smtp_server: Any
) -> None:
    buyer = f"user_{uuid.uuid4().hex[:8]}"
    to = f"{buyer}@clerk-primary.example"
    with fake_clerk() as clerk:
        clerk.users[buyer] = clerk_user(buyer, to, f"{buyer}@old.example")
        clerk.failures.append(503)  # Clerk fails once: the receipt is retried, not lost
        h = await live(
            identity_provider="clerk",
            clerk_secret_key=SECRET_KEY,
            clerk_api_base=clerk.base_url,
        )
        await checkout_without_email(h, buyer)

        async def attempted() -> bool:  # the claim counts it; the mark records why it failed
            return [r["last_error"] is not None for r in await h.rows(receipts)] == [True]

        await wait_for(attempted, timeout=20, message="the first attempt (Clerk's 503)")
        [failed] = await h.rows(receipts)
        assert (failed["sent_at"], failed["email"], failed["attempts"]) == (None, "", 1)
        assert "503" in failed["last_error"]
        async with h.db.unit_of_work() as uow:  # the backoff is 2 s: the test does not wait it
            await uow.session.execute(receipts.update().values(next_attempt_at=datetime.now(UTC)))
        # the worker finds it due within its idle wait (5 s)
        message = await received(smtp_server, to)
    assert "Peak Form Studio" in message.get_body(("plain",)).get_content()
    row = await marked_sent(h)
    assert (row["email"], row["attempts"]) == (to, 2)
    assert [path for path, _ in clerk.requests] == [f"/v1/users/{buyer}"] * 2
