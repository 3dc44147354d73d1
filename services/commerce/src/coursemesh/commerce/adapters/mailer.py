"""Receipt emails over SMTP (aiosmtplib): a worker sends queued ``receipts`` rows once each."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import sqlalchemy as sa

from coursemesh.chassis.db import Database
from coursemesh.commerce.adapters.tables import receipts

log = logging.getLogger("coursemesh.commerce.receipts")


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
                        sa.select(receipts)
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
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = row["email"]
        message["Subject"] = row["subject"]
        message["Date"] = email.utils.format_datetime(datetime.now(UTC))
        domain = email.utils.parseaddr(self.sender)[1].rpartition("@")[2] or "coursemesh.local"
        message["Message-ID"] = f"<receipt-{row['transaction_id']}@{domain}>"
        message["X-Coursemesh-Transaction"] = str(row["transaction_id"])
        message.set_content(row["body"])
        return message

    async def _send(self, row: Any) -> None:
        now = datetime.now(UTC)
        values: dict[str, object]
        try:
            async with asyncio.timeout(self.send_timeout):
                await aiosmtplib.send(
                    self.message(row), hostname=self.host, port=self.port, timeout=self.send_timeout
                )
            values = {"sent_at": now, "attempts": row["attempts"] + 1}
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
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
