"""Receipts through an authenticated relay (aiosmtpd: AUTH over STARTTLS or implicit TLS, a CA
made in the test), as text and HTML; failures are attempts, retried; a receipt queued without
the buyer's address goes to the buyer directory's, or ends as ``no_address``."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from commerce_support import Harness
from mail_support import PASSWORD, USERNAME, Certificates, make_certificates, smtp_relay

from coursemesh.commerce.adapters.mailer import NO_ADDRESS, ReceiptSender
from coursemesh.commerce.adapters.tables import payment_transactions, receipts
from coursemesh.commerce.app.ports import DirectoryUnavailable

SENDER = "Peak Form <receipts@shop.example>"
BODY = "Thank you for your purchase from <Peak & Form>.\n\nItem: <script>alert(1)</script>"


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path)


def relay_sender(h: Harness, relay: Any, certificates: Certificates, **kw: Any) -> ReceiptSender:
    options: dict[str, Any] = {
        "security": "starttls",
        "username": USERNAME,
        "password": PASSWORD,
        "ca_file": str(certificates.ca_file),
        **kw,
    }
    return ReceiptSender(h.db, relay.host, relay.port, SENDER, asyncio.Event(), **options)


async def queue(h: Harness, to: str = "", *, buyer: str | None = None) -> uuid.UUID:
    """A receipt to ``to`` (empty: the token had no email), of a payment of ``buyer``."""
    transaction_id = uuid.uuid4()
    async with h.db.unit_of_work() as uow:
        if buyer is not None:
            await uow.session.execute(
                sa.insert(payment_transactions).values(
                    id=transaction_id,
                    organization_id=uuid.uuid4(),
                    user_id=buyer,
                    amount_in_cents=4900,
                    currency="USD",
                    provider="sandbox",
                    status="completed",
                    metadata={},
                    description="30-day reset",
                    version=1,
                )
            )
        await uow.session.execute(
            sa.insert(receipts).values(
                transaction_id=transaction_id, email=to, subject="Your <receipt>", body=BODY
            )
        )
    return transaction_id


async def row(h: Harness, transaction_id: uuid.UUID) -> dict[str, Any]:
    [found] = await h.rows(receipts, receipts.c.transaction_id == transaction_id)
    return found


async def make_due(h: Harness, transaction_id: uuid.UUID) -> None:
    async with h.db.unit_of_work() as uow:
        await uow.session.execute(
            sa.update(receipts)
            .where(receipts.c.transaction_id == transaction_id)
            .values(next_attempt_at=sa.func.now())
        )


def assert_receipt(message: Any, transaction_id: uuid.UUID, to: str) -> None:
    """Both parts, the headers, and the HTML escaped."""
    assert message.get_content_type() == "multipart/alternative"
    assert (message["From"], message["To"], message["Subject"]) == (SENDER, to, "Your <receipt>")
    assert message["Message-ID"] == f"<receipt-{transaction_id}@shop.example>"
    assert message["Date"]
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == BODY  # CRLF on the wire
    text = html.get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;Peak &amp; Form&gt;" in text
    assert "<script>" not in text
    assert "<title>Your &lt;receipt&gt;</title>" in text


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_a_receipt_goes_through_an_authenticated_tls_relay_with_text_and_html(
    harness: Harness, certificates: Certificates, security: Any
) -> None:
    to = f"{uuid.uuid4().hex[:8]}@buyer.example"
    transaction_id = await queue(harness, to)
    async with smtp_relay(certificates, security) as relay:
        sender = relay_sender(harness, relay, certificates, security=security)
        assert await sender.send_due() == 1
        [message] = relay.to(to)
    assert relay.envelopes == [("receipts@shop.example", [to])]
    assert relay.refused_logins == []
    assert_receipt(message, transaction_id, to)
    sent = await row(harness, transaction_id)
    assert (sent["attempts"], sent["last_error"]) == (1, None)
    assert sent["sent_at"] is not None


async def test_a_wrong_password_is_an_attempt_retried_later_not_lost(
    harness: Harness, certificates: Certificates
) -> None:
    to = f"{uuid.uuid4().hex[:8]}@buyer.example"
    transaction_id = await queue(harness, to)
    async with smtp_relay(certificates, "starttls") as relay:
        wrong = relay_sender(harness, relay, certificates, password="not-the-password")
        before = datetime.now(UTC)
        assert await wrong.send_due() == 1
        assert relay.messages == []
        assert set(relay.refused_logins) == {USERNAME}  # each mechanism tried, each refused
        failed = await row(harness, transaction_id)
        assert failed["sent_at"] is None
        assert failed["attempts"] == 1
        assert "535" in failed["last_error"]  # the relay's "authentication failed"
        assert failed["next_attempt_at"] > before  # backed off, still due later
        assert await wrong.send_due() == 0  # not due again at once
        # the password is fixed: the next attempt delivers it, counted as the second
        await make_due(harness, transaction_id)
        assert await relay_sender(harness, relay, certificates).send_due() == 1
        [message] = relay.to(to)
    assert_receipt(message, transaction_id, to)
    sent = await row(harness, transaction_id)
    assert (sent["attempts"], sent["sent_at"] is not None) == (2, True)


async def test_a_relay_certificate_nobody_vouches_for_is_an_attempt(
    harness: Harness, certificates: Certificates
) -> None:
    to = f"{uuid.uuid4().hex[:8]}@buyer.example"
    transaction_id = await queue(harness, to)
    async with smtp_relay(certificates, "tls") as relay:
        # the system's CAs do not know the test's CA: nothing is said, not even the password
        sender = relay_sender(harness, relay, certificates, security="tls", ca_file=None)
        assert await sender.send_due() == 1
        assert relay.messages == []
        assert relay.refused_logins == []
    failed = await row(harness, transaction_id)
    assert (failed["sent_at"], failed["attempts"]) == (None, 1)
    assert "CERTIFICATE_VERIFY_FAILED" in failed["last_error"]


async def test_a_starttls_sender_refuses_a_relay_that_cannot_upgrade(
    harness: Harness, certificates: Certificates, smtp_server: Any
) -> None:
    to = f"{uuid.uuid4().hex[:8]}@buyer.example"
    transaction_id = await queue(harness, to)
    # the development server speaks plain SMTP only: no credentials are sent in the clear
    sender = relay_sender(harness, smtp_server, certificates)
    assert await sender.send_due() == 1
    assert [m for m in smtp_server.mailbox.messages() if m["To"] == to] == []
    failed = await row(harness, transaction_id)
    assert (failed["sent_at"], failed["attempts"]) == (None, 1)
    assert "STARTTLS" in failed["last_error"] or "starttls" in failed["last_error"].lower()


class Directory:
    """A buyer directory answering from a dict (or failing while ``down``)."""

    def __init__(self, addresses: dict[str, str]) -> None:
        self.addresses = addresses
        self.asked: list[str] = []
        self.down = False

    async def email_of(self, user_id: str) -> str | None:
        self.asked.append(user_id)
        if self.down:
            raise DirectoryUnavailable("clerk answered 503 for a user")
        return self.addresses.get(user_id)

    async def user_with_email(self, email: str) -> str | None:
        found = [user for user, address in self.addresses.items() if address == email]
        return found[0] if len(found) == 1 else None


async def test_a_receipt_without_an_address_goes_to_the_directorys(
    harness: Harness, certificates: Certificates
) -> None:
    buyer = f"user_{uuid.uuid4().hex[:8]}"
    to = f"{buyer}@directory.example"
    directory = Directory({buyer: to})
    transaction_id = await queue(harness, "", buyer=buyer)
    known = f"{uuid.uuid4().hex[:8]}@buyer.example"
    with_address = await queue(harness, known, buyer=buyer)
    async with smtp_relay(certificates, "tls") as relay:
        sender = relay_sender(harness, relay, certificates, security="tls", directory=directory)
        assert await sender.send_due() == 2
        [message] = relay.to(to)
        assert len(relay.to(known)) == 1
    assert directory.asked == [buyer]  # only for the receipt without an address
    assert_receipt(message, transaction_id, to)
    sent = await row(harness, transaction_id)
    assert (sent["email"], sent["attempts"], sent["last_error"]) == (to, 1, None)
    assert (await row(harness, with_address))["email"] == known


async def test_a_directory_that_cannot_answer_is_an_attempt_retried_later(
    harness: Harness, certificates: Certificates
) -> None:
    buyer = f"user_{uuid.uuid4().hex[:8]}"
    to = f"{buyer}@directory.example"
    directory = Directory({buyer: to})
    directory.down = True
    transaction_id = await queue(harness, "", buyer=buyer)
    async with smtp_relay(certificates, "starttls") as relay:
        sender = relay_sender(harness, relay, certificates, directory=directory)
        assert await sender.send_due() == 1
        failed = await row(harness, transaction_id)
        assert (failed["sent_at"], failed["attempts"], failed["email"]) == (None, 1, "")
        assert "503" in failed["last_error"]
        assert relay.messages == []
        directory.down = False
        await make_due(harness, transaction_id)
        assert await sender.send_due() == 1
        assert len(relay.to(to)) == 1
    sent = await row(harness, transaction_id)
    assert (sent["email"], sent["attempts"]) == (to, 2)


async def test_no_address_anywhere_ends_the_receipt_with_a_reason(
    harness: Harness, certificates: Certificates
) -> None:
    buyer = f"user_{uuid.uuid4().hex[:8]}"
    directory = Directory({})
    transaction_id = await queue(harness, "", buyer=buyer)
    async with smtp_relay(certificates, "starttls") as relay:
        sender = relay_sender(harness, relay, certificates, directory=directory, max_attempts=5)
        assert await sender.send_due() == 1
        assert relay.messages == []
        ended = await row(harness, transaction_id)
        assert ended["sent_at"] is None
        assert ended["last_error"].startswith(f"{NO_ADDRESS}:")
        assert ended["attempts"] == 5  # it ends here: never claimed again, even once due
        await make_due(harness, transaction_id)
        assert await sender.send_due() == 0
    assert directory.asked == [buyer]
