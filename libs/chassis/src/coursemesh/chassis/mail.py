"""Mail over SMTP (aiosmtplib), shared by the services that send mail: the relay's transport
(plain SMTP, STARTTLS or implicit TLS, AUTH when configured), one message built with a stable
``Message-ID`` and extra headers, and the lease-based claim of a table of queued mails
(claim in a committed transaction, send, mark), so no two replicas send one row at once."""

from __future__ import annotations

import email.policy
import email.utils
import functools
import html
import os
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Literal

import aiosmtplib
import sqlalchemy as sa

from coursemesh.chassis.db import Database

Security = Literal["none", "starttls", "tls"]

#: What a failed send raises (besides ``TimeoutError``): a retried attempt, not a crash.
SEND_ERRORS: tuple[type[BaseException], ...] = (aiosmtplib.SMTPException, OSError, TimeoutError)


#: How a message goes on the wire: SMTP's, with lines up to RFC 5322's limit. Under the usual
#: 78, a header holding one long URL (``List-Unsubscribe: <https://…?token=…>``) would be
#: folded into RFC 2047 encoded words, which mail clients do not read as a URL.
WIRE_POLICY = email.policy.SMTP.clone(max_line_length=998)
WIRE_POLICY_UTF8 = email.policy.SMTPUTF8.clone(max_line_length=998)


@dataclass(frozen=True)
class SmtpTransport:
    """Where and how mail leaves: the relay and its transport (``SMTP_SECURITY``, …)."""

    host: str
    port: int
    security: Security = "none"
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    # Bound on one whole SMTP send (connect to DATA accepted).
    timeout: float = 10.0

    @functools.cached_property
    def _tls_context(self) -> ssl.SSLContext:
        """Certificate and host name checked, against ``ca_file`` or the system's CAs."""
        return ssl.create_default_context(cafile=self.ca_file)

    def kwargs(self) -> dict[str, Any]:
        """aiosmtplib's connection arguments. ``none`` is plain SMTP, never upgraded on the
        server's word; ``starttls`` refuses a server that cannot upgrade."""
        kw: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "timeout": self.timeout,
            "username": self.username,
            "password": self.password,
            "use_tls": self.security == "tls",
            "start_tls": self.security == "starttls",
        }
        if self.security != "none":
            kw["tls_context"] = self._tls_context
        return kw

    async def send(self, message: EmailMessage) -> None:
        """Send ``message`` to its ``To`` addresses, flattened with :data:`WIRE_POLICY`."""
        sender = email.utils.parseaddr(str(message["From"]))[1]
        recipients = [a for _n, a in email.utils.getaddresses(message.get_all("To", []))]
        utf8 = not "".join([sender, *recipients]).isascii()
        policy = WIRE_POLICY_UTF8 if utf8 else WIRE_POLICY
        await aiosmtplib.send(
            message.as_bytes(policy=policy),
            sender=sender,
            recipients=recipients,
            mail_options=["SMTPUTF8"] if utf8 else None,
            **self.kwargs(),
        )


def check_smtp(
    port: int,
    security: Security,
    username: str | None,
    password: str | None,
    ca_file: str | None,
) -> None:
    """Refuse contradictory ``SMTP_*`` settings before anything starts (``ValueError``)."""
    if not 0 < port < 65536:
        raise ValueError(f"SMTP_PORT must be between 1 and 65535, not {port}")
    if bool(username) != bool(password):
        raise ValueError("SMTP_USERNAME and SMTP_PASSWORD go together: set both (AUTH) or neither")
    if username and security == "none":
        raise ValueError(
            "SMTP_USERNAME/SMTP_PASSWORD need SMTP_SECURITY=starttls or tls: the password"
            " is not sent over plain SMTP"
        )
    if ca_file is not None:
        if security == "none":
            raise ValueError("SMTP_CA_FILE needs SMTP_SECURITY=starttls or tls")
        if not (os.path.isfile(ca_file) and os.access(ca_file, os.R_OK)):
            raise ValueError(f"SMTP_CA_FILE {ca_file!r} is not a readable file")


def sender_domain(sender: str) -> str:
    """The domain of the sender's address (``Shop <r@shop.example>`` → ``shop.example``)."""
    return email.utils.parseaddr(sender)[1].rpartition("@")[2] or "coursemesh.local"


def compose(
    sender: str,
    to: str,
    subject: str,
    text: str,
    *,
    message_id: str,
    headers: Mapping[str, str] | None = None,
    with_html: bool = True,
) -> EmailMessage:
    """A message with ``Message-ID`` ``<{message_id}@{sender's domain}>``: the same for every
    copy of one mail (a resend after a lost mark), by which mail systems recognise it; the text,
    and (``with_html``) the same text as escaped HTML."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = email.utils.format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<{message_id}@{sender_domain(sender)}>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if with_html:
        message.add_alternative(html_document(subject, text), subtype="html")
    return message


def html_document(subject: str, body: str) -> str:
    """The text as an HTML document: every piece of it escaped (a course or a seller named
    ``<script>`` is shown, not run); blank lines separate paragraphs."""
    paragraphs = "".join(
        "<p>" + "<br>".join(html.escape(line) for line in block.split("\n")) + "</p>"
        for block in body.split("\n\n")
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head><body>{paragraphs}</body></html>"
    )


@dataclass(frozen=True)
class LeasedMailQueue:
    """A table of queued mails with ``sent_at``, ``attempts``, ``next_attempt_at`` and
    ``last_error`` columns, keyed by ``key``.

    The mail cannot be in the database's transaction, so rows are first claimed in a committed
    transaction of their own (``FOR UPDATE SKIP LOCKED``; their next attempt pushed one lease
    ahead: no replica takes them meanwhile), then sent, then marked. Only a crash between the
    SMTP server's acceptance and that mark sends one again, a lease later, with the same
    ``Message-ID``. The claim counts the attempt, so a row whose sending kills the process still
    runs out of attempts."""

    db: Database
    table: sa.Table
    key: str
    max_attempts: int = 10
    lease: float = 60.0
    send_timeout: float = 10.0

    async def claim(
        self, limit: int, columns: Sequence[Any] = ()
    ) -> tuple[float, Sequence[sa.RowMapping]]:
        """Due rows (with ``columns`` besides the table's), claimed for one lease; and the
        monotonic time taken before the claim, for :meth:`within_lease`."""
        t = self.table
        claimed_at = time.monotonic()  # before the claim: the lease is measured conservatively
        async with self.db.unit_of_work() as uow:
            rows = (
                (
                    await uow.session.execute(
                        sa.select(t, *columns)
                        .where(
                            t.c.sent_at.is_(None),
                            t.c.attempts < self.max_attempts,
                            t.c.next_attempt_at <= sa.func.now(),
                        )
                        .limit(limit)
                        .with_for_update(skip_locked=True, of=t)
                    )
                )
                .mappings()
                .all()
            )
            if rows:
                await uow.session.execute(
                    sa.update(t)
                    .where(t.c[self.key].in_([r[self.key] for r in rows]))
                    .values(
                        next_attempt_at=sa.func.now() + timedelta(seconds=self.lease),
                        attempts=t.c.attempts + 1,
                    )
                )
        return claimed_at, rows

    def within_lease(self, claimed_at: float) -> bool:
        """Whether one more send, at its longest, ends before the claim's lease: past it,
        another sender may hold the row (it is due again when the lease ends)."""
        return time.monotonic() - claimed_at + self.send_timeout < self.lease

    @staticmethod
    def sent(row: Mapping[str, Any], now: datetime) -> dict[str, object]:
        return {"sent_at": now, "attempts": row["attempts"] + 1}

    @staticmethod
    def failed(row: Mapping[str, Any], error: BaseException, now: datetime) -> dict[str, object]:
        """An attempt that failed: retried after an exponential backoff (at most 5 minutes)."""
        attempts = int(row["attempts"]) + 1
        return {
            "attempts": attempts,
            "last_error": str(error)[:500],
            "next_attempt_at": now + timedelta(seconds=min(300, 2**attempts)),
        }

    async def mark(self, key: object, values: Mapping[str, object]) -> None:
        async with self.db.unit_of_work() as uow:
            await uow.session.execute(
                sa.update(self.table).where(self.table.c[self.key] == key).values(**values)
            )
