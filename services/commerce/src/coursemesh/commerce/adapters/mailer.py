"""Receipt emails over SMTP (aiosmtplib): a worker sends queued ``receipts`` rows once each,
as plain text and HTML, over plain SMTP, STARTTLS or implicit TLS, with AUTH when configured.
A receipt queued without the buyer's address goes to the address the buyer directory gives."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import html
import logging
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Literal

import aiosmtplib
import sqlalchemy as sa

from coursemesh.chassis.db import Database
from coursemesh.commerce.adapters.identity import NoDirectory
from coursemesh.commerce.adapters.tables import payment_transactions, receipts
from coursemesh.commerce.app.ports import BuyerDirectory, DirectoryUnavailable
from coursemesh.commerce.settings import Settings

log = logging.getLogger("coursemesh.commerce.receipts")

#: ``last_error`` of a receipt that ended because nobody knows where to send it.
NO_ADDRESS = "no_address"

Security = Literal["none", "starttls", "tls"]


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

    async def send_due(self, limit: int = 20) -> int:
        """Send due receipts, each at most once per lease.

        The mail cannot be in the database's transaction, so a receipt is first claimed in a
        committed transaction of its own (its next attempt pushed one lease ahead: no replica
        takes it meanwhile), then sent, then marked sent. Only a crash between the SMTP server's
        acceptance and that mark sends it again, a lease later; the copy carries the same
        ``Message-ID``, by which mail systems recognise it. The claim counts the attempt, so a
        receipt whose sending kills the process still runs out of attempts."""
        claimed_at = time.monotonic()  # before the claim: the lease is measured conservatively
        async with self.db.unit_of_work() as uow:
            rows = (
                (
                    await uow.session.execute(
                        sa.select(receipts, _BUYER)
                        .where(
                            receipts.c.sent_at.is_(None),
                            receipts.c.attempts < self.max_attempts,
                            receipts.c.next_attempt_at <= sa.func.now(),
                        )
                        .limit(limit)
                        .with_for_update(skip_locked=True)
                    )
                )
                .mappings()
                .all()
            )
            if rows:
                await uow.session.execute(
                    sa.update(receipts)
                    .where(receipts.c.transaction_id.in_([r["transaction_id"] for r in rows]))
                    .values(
                        next_attempt_at=sa.func.now() + timedelta(seconds=self.lease),
                        attempts=receipts.c.attempts + 1,
                    )
                )
        for row in rows:
            if time.monotonic() - claimed_at + self.send_timeout >= self.lease:
                # the rest would be sent after (or near) the end of their lease: another
                # sender may hold them by then; they are due again when the lease ends
                log.warning("receipt %s left to the next claim (lease)", row["transaction_id"])
                continue
            await self._send(row)
        return len(rows)

    def message(self, row: Any) -> EmailMessage:
        """The receipt as a multipart/alternative message: its text, and the same text as
        HTML (escaped)."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = row["email"]
        message["Subject"] = row["subject"]
        message["Date"] = email.utils.format_datetime(datetime.now(UTC))
        domain = email.utils.parseaddr(self.sender)[1].rpartition("@")[2] or "coursemesh.local"
        message["Message-ID"] = f"<receipt-{row['transaction_id']}@{domain}>"
        message["X-Coursemesh-Transaction"] = str(row["transaction_id"])
        message.set_content(row["body"])
        message.add_alternative(html_body(row["subject"], row["body"]), subtype="html")
        return message

    @functools.cached_property
    def _tls_context(self) -> ssl.SSLContext:
        """Certificate and host name checked, against ``ca_file`` or the system's CAs."""
        return ssl.create_default_context(cafile=self.ca_file)

    def _transport(self) -> dict[str, Any]:
        """aiosmtplib's connection arguments. ``none`` is plain SMTP, never upgraded on the
        server's word; ``starttls`` refuses a server that cannot upgrade."""
        kw: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "timeout": self.send_timeout,
            "username": self.username,
            "password": self.password,
            "use_tls": self.security == "tls",
            "start_tls": self.security == "starttls",
        }
        if self.security != "none":
            kw["tls_context"] = self._tls_context
        return kw

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
                    await aiosmtplib.send(
                        self.message({**row, "email": address}), **self._transport()
                    )
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
        except (aiosmtplib.SMTPException, OSError, TimeoutError, DirectoryUnavailable) as exc:
            attempts = row["attempts"] + 1
            log.warning(
                "receipt %s not sent (attempt %d): %s", row["transaction_id"], attempts, exc
            )
            values = {
                "attempts": attempts,
                "last_error": str(exc)[:500],
                "next_attempt_at": now + timedelta(seconds=min(300, 2**attempts)),
            }
        async with self.db.unit_of_work() as uow:
            await uow.session.execute(
                sa.update(receipts)
                .where(receipts.c.transaction_id == row["transaction_id"])
                .values(**values)
            )


#: Whom the mail is for: the user it names, else the buyer of the receipt's payment.
_BUYER = sa.func.coalesce(
    receipts.c.user_id,
    sa.select(payment_transactions.c.user_id)
    .where(payment_transactions.c.id == receipts.c.transaction_id)
    .scalar_subquery(),
).label("addressee")


def html_body(subject: str, body: str) -> str:
    """The receipt's text as an HTML document: every piece of it escaped (a course or a seller
    named ``<script>`` is shown, not run); blank lines separate paragraphs."""
    paragraphs = "".join(
        "<p>" + "<br>".join(html.escape(line) for line in block.split("\n")) + "</p>"
        for block in body.split("\n\n")
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head><body>{paragraphs}</body></html>"
    )
