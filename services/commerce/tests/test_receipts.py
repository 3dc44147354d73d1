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


async def test_a_receipt_being_sent_is_not_taken_by_a_concurrent_sender(
    harness: Harness, smtp_server: Any
) -> None:
    to = f"{uuid.uuid4().hex[:8]}@buyer.example"
    transaction_id = await queue_receipt(harness, to)
    first = sender(harness, smtp_server)
    claimed, release = asyncio.Event(), asyncio.Event()
    send = first._send

    async def held_before_smtp(row: Any) -> None:
        claimed.set()
        await release.wait()
        await send(row)

    first._send = held_before_smtp  # type: ignore[method-assign]
    running = asyncio.create_task(first.send_due())
    await claimed.wait()
    # the first sender holds the claim, mid-send: a second replica finds nothing due
    assert await sender(harness, smtp_server).send_due() == 0
    release.set()
    assert await running == 1
    (mail,) = mails_to(smtp_server, to)
    assert mail["Message-ID"] == f"<receipt-{transaction_id}@shop.example>"
    assert await sender(harness, smtp_server).send_due() == 0


async def test_the_claim_counts_the_attempt_so_a_crashing_receipt_runs_out(
    harness: Harness, smtp_server: Any
) -> None:
    to = f"{uuid.uuid4().hex[:8]}@buyer.example"
    transaction_id = await queue_receipt(harness, to)
    first = sender(harness, smtp_server, max_attempts=1)

    async def crash(row: Any) -> None:  # the process dies before the SMTP send
        return None

    first._send = crash  # type: ignore[method-assign]
    assert await first.send_due() == 1
    async with harness.db.unit_of_work() as uow:
        await uow.session.execute(
            sa.update(receipts)
            .where(receipts.c.transaction_id == transaction_id)
            .values(next_attempt_at=sa.func.now())
        )
        attempts = (
            await uow.session.execute(
                sa.select(receipts.c.attempts).where(receipts.c.transaction_id == transaction_id)
            )
        ).scalar_one()
    assert attempts == 1
    assert await sender(harness, smtp_server, max_attempts=1).send_due() == 0
    assert mails_to(smtp_server, to) == []


async def test_a_batch_does_not_send_past_its_lease(harness: Harness, smtp_server: Any) -> None:
    to = f"{uuid.uuid4().hex[:8]}@buyer.example"
    transaction_id = await queue_receipt(harness, to)
    # a send could outlast the lease: the receipt is left to the next claim, unsent
    assert await sender(harness, smtp_server, lease=5.0, send_timeout=5.0).send_due() == 1
    assert mails_to(smtp_server, to) == []
    async with harness.db.unit_of_work() as uow:
        row = (
            (
                await uow.session.execute(
                    sa.select(receipts).where(receipts.c.transaction_id == transaction_id)
                )
            )
            .mappings()
            .one()
        )
    assert row["sent_at"] is None
    assert await sender(harness, smtp_server).send_due() == 0  # still under its lease


async def test_the_message_id_domain_comes_from_a_display_name_sender(
    harness: Harness, smtp_server: Any
) -> None:
    row = {
        "transaction_id": uuid.uuid4(),
        "email": "b@buyer.example",
        "subject": "Your receipt",
        "body": "Thanks",
    }
    named = ReceiptSender(
        harness.db,
        smtp_server.host,
        smtp_server.port,
        "Shop <receipts@shop.example>",
        asyncio.Event(),
    )
    assert named.message(row)["Message-ID"] == f"<receipt-{row['transaction_id']}@shop.example>"
