"""Receipt emails over SMTP (aiosmtplib): a worker sends queued ``receipts`` rows once each,
as plain text and HTML, over plain SMTP, STARTTLS or implicit TLS, with AUTH when configured.
A receipt queued without the buyer's address goes to the address the buyer directory gives."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa

from coursemesh.chassis.db import Database
from coursemesh.chassis.mail import (
    SEND_ERRORS,
    LeasedMailQueue,
    Security,
    SmtpTransport,
    compose,
    html_document,
)
from coursemesh.commerce.adapters.identity import NoDirectory
from coursemesh.commerce.adapters.tables import payment_transactions, receipts
from coursemesh.commerce.app.ports import BuyerDirectory, DirectoryUnavailable
from coursemesh.commerce.settings import Settings

log = logging.getLogger("coursemesh.commerce.receipts")

#: ``last_error`` of a receipt that ended because nobody knows where to send it.
NO_ADDRESS = "no_address"


@dataclass
class ReceiptSender:
    db: Database
    host: str
    port: int
    sender: str
    wake: asyncio.Event
    max_attempts: int = 10
    idle_wait: float = 5.0
    # How long a claimed receipt is left to its sender before another may take it.
    lease: float = 60.0
    # Bound on one whole SMTP send (connect to DATA accepted); a batch stops sending once the
    # next send could end after the lease, so no receipt is mailed by two holders at once.
    send_timeout: float = 10.0
    # The relay's transport and credentials (``SMTP_SECURITY``, ``SMTP_USERNAME``, …).
    security: Security = "none"
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    # Asked for the buyer's address when the receipt was queued without one.
    directory: BuyerDirectory = field(default_factory=NoDirectory)

    @classmethod
    def from_settings(
        cls, settings: Settings, db: Database, wake: asyncio.Event, directory: BuyerDirectory
    ) -> ReceiptSender:
        return cls(
            db,
            settings.smtp_host,
            settings.smtp_port,
            settings.mail_from,
            wake,
            settings.receipt_max_attempts,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
            ca_file=settings.smtp_ca_file,
            directory=directory,
        )

    async def run(self) -> None:
        while True:
            if await self.send_due() == 0:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=self.idle_wait)

    @functools.cached_property
    def _queue(self) -> LeasedMailQueue:
        return LeasedMailQueue(
            self.db, receipts, "transaction_id", self.max_attempts, self.lease, self.send_timeout
        )

    @functools.cached_property
    def _smtp(self) -> SmtpTransport:
        return SmtpTransport(
            self.host,
            self.port,
            self.security,
            self.username,
            self.password,
            self.ca_file,
            self.send_timeout,
        )

    async def send_due(self, limit: int = 20) -> int:
        """Send due receipts, each at most once per lease (``chassis.mail.LeasedMailQueue``:
        claimed in a committed transaction, sent, marked sent; a crash between the SMTP
        server's acceptance and the mark sends it again a lease later, with the same
        ``Message-ID``)."""
        claimed_at, rows = await self._queue.claim(limit, (_BUYER,))
        for row in rows:
            if not self._queue.within_lease(claimed_at):
                # the rest would be sent after (or near) the end of their lease: another
                # sender may hold them by then; they are due again when the lease ends
                log.warning("receipt %s left to the next claim (lease)", row["transaction_id"])
                continue
            await self._send(row)
        return len(rows)

    def message(self, row: Any) -> EmailMessage:
        """The receipt as a multipart/alternative message: its text, and the same text as
        HTML (escaped)."""
        return compose(
            self.sender,
            row["email"],
            row["subject"],
            row["body"],
            message_id=f"receipt-{row['transaction_id']}",
            headers={"X-Coursemesh-Transaction": str(row["transaction_id"])},
        )

    async def _address(self, row: Any) -> str | None:
        """The address queued with the mail, else the directory's for its addressee."""
        if row["email"]:
            return str(row["email"])
        user_id = row.get("addressee")
        if not user_id:
            return None
        return await self.directory.email_of(str(user_id))

    async def _send(self, row: Any) -> None:
        now = datetime.now(UTC)
        values: dict[str, object]
        try:
            # the directory's answer and the SMTP send together stay within the bound
            async with asyncio.timeout(self.send_timeout):
                address = await self._address(row)
                if address is not None:
                    await self._smtp.send(self.message({**row, "email": address}))
            if address is None:
                # nobody knows where to write: the receipt ends here, saying why
                log.warning("receipt %s: no address for the buyer", row["transaction_id"])
                values = {
                    "attempts": max(self.max_attempts, row["attempts"] + 1),
                    "last_error": f"{NO_ADDRESS}: the buyer's token had no email and the"
                    " identity directory knows no address for them",
                }
            else:
                values = {"sent_at": now, "attempts": row["attempts"] + 1, "email": address}
        except _FAILURES as exc:
            values = LeasedMailQueue.failed(row, exc, now)
            log.warning(
                "receipt %s not sent (attempt %s): %s",
                row["transaction_id"],
                values["attempts"],
                exc,
            )
        await self._queue.mark(row["transaction_id"], values)


#: A failed attempt (retried), not a crash.
_FAILURES: tuple[type[BaseException], ...] = (*SEND_ERRORS, DirectoryUnavailable)

#: Whom the mail is for: the user it names, else the buyer of the receipt's payment.
_BUYER = sa.func.coalesce(
    receipts.c.user_id,
    sa.select(payment_transactions.c.user_id)
    .where(payment_transactions.c.id == receipts.c.transaction_id)
    .scalar_subquery(),
).label("addressee")


#: The receipt's text as an escaped HTML document (``chassis.mail.html_document``).
html_body = html_document
