"""Receipts over a real SMTP server: claimed before they are sent, sent once per lease, each
copy recognisable by its Message-ID."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import sqlalchemy as sa
from commerce_support import Harness

from coursemesh.commerce.adapters.mailer import ReceiptSender
from coursemesh.commerce.adapters.tables import receipts


def sender(harness: Harness, smtp_server: Any, **kw: Any) -> ReceiptSender:
    return ReceiptSender(
        harness.db,
        smtp_server.host,
        smtp_server.port,
        "receipts@shop.example",
        asyncio.Event(),
        **kw,
    )


async def queue_receipt(harness: Harness, to: str) -> uuid.UUID:
    transaction_id = uuid.uuid4()
    async with harness.db.unit_of_work() as uow:
        await uow.session.execute(
            sa.insert(receipts).values(
                transaction_id=transaction_id, email=to, subject="Your receipt", body="Thanks"
            )
        )
    return transaction_id


def mails_to(smtp_server: Any, to: str) -> list[Any]:
    return [m for m in smtp_server.mailbox.messages() if m["To"] == to]


async def test_a_receipt_is_sent_once_with_a_stable_message_id_and_a_date(
    harness: Harness, smtp_server: Any
) -> None:
    to = f"{uuid.uuid4().hex[:8]}@buyer.example"
    transaction_id = await queue_receipt(harness, to)
    assert await sender(harness, smtp_server).send_due() == 1
    assert await sender(harness, smtp_server).send_due() == 0  # marked sent
    (mail,) = mails_to(smtp_server, to)
    assert mail["Message-ID"] == f"<receipt-{transaction_id}@shop.example>"
    assert mail["Date"]
    other = await queue_receipt(harness, to)
    await sender(harness, smtp_server).send_due()
    assert {m["Message-ID"] for m in mails_to(smtp_server, to)} == {
        f"<receipt-{transaction_id}@shop.example>",
        f"<receipt-{other}@shop.example>",
    }


async def test_a_receipt_whose_sent_mark_was_lost_is_not_sent_again_within_its_lease(
    harness: Harness, smtp_server: Any
) -> None:
    to = f"{uuid.uuid4().hex[:8]}@buyer.example"
    transaction_id = await queue_receipt(harness, to)
    first = sender(harness, smtp_server)
    crashed: list[Any] = []

    async def crash_before_marking(row: Any) -> None:
        # the mail leaves, then the process dies before it records that
        import aiosmtplib

        await aiosmtplib.send(first.message(row), hostname=first.host, port=first.port)
        crashed.append(row["transaction_id"])

    first._send = crash_before_marking  # type: ignore[method-assign]
    assert await first.send_due() == 1
    assert crashed == [transaction_id]
    # another replica (or the restarted one) looks for due receipts: this one is claimed
    assert await sender(harness, smtp_server).send_due() == 0
    assert len(mails_to(smtp_server, to)) == 1
    # once the lease is over it is sent again, as the same message
    async with harness.db.unit_of_work() as uow:
        await uow.session.execute(
            sa.update(receipts)
            .where(receipts.c.transaction_id == transaction_id)
            .values(next_attempt_at=sa.func.now())
        )
    assert await sender(harness, smtp_server).send_due() == 1
    copies = mails_to(smtp_server, to)
    assert len(copies) == 2
    assert copies[0]["Message-ID"] == copies[1]["Message-ID"]
