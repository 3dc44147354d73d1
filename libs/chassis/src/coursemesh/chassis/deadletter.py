"""Inspect and replay the dead-letter stream. On a development stack, ``coursemesh deadletter
list|replay`` does this with the stack's own NATS address; elsewhere (a pod, a server):

    python -m coursemesh.chassis.deadletter --nats nats://127.0.0.1:4222 list
    python -m coursemesh.chassis.deadletter --nats nats://127.0.0.1:4222 replay 12 [13 ...]
    python -m coursemesh.chassis.deadletter --nats nats://127.0.0.1:4222 replay --all

A replay re-publishes the original bytes on the original subject (a fresh ``Nats-Msg-Id`` so
JetStream does not drop it as a duplicate) and removes the dead letter. Every consumer of that
stream sees the event again; the inboxes of those that already processed it make that harmless.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass

import nats
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from coursemesh.chassis.consumer import (
    HEADER_CONSUMER,
    HEADER_DELIVERIES,
    HEADER_ERROR,
    HEADER_ORIGINAL_SUBJECT,
)
from coursemesh.contracts import DEAD_LETTER_STREAM


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    subject: str
    original_subject: str
    consumer: str
    error: str
    deliveries: int
    data: bytes


async def list_dead_letters(js: JetStreamContext) -> list[DeadLetter]:
    try:
        info = await js.stream_info(DEAD_LETTER_STREAM)
    except NotFoundError:
        return []
    letters: list[DeadLetter] = []
    first, last = info.state.first_seq, info.state.last_seq
    for seq in range(first, last + 1) if info.state.messages else ():
        letter = await get_dead_letter(js, seq)
        if letter is not None:
            letters.append(letter)
    return letters


async def get_dead_letter(js: JetStreamContext, seq: int) -> DeadLetter | None:
    try:
        msg = await js.get_msg(DEAD_LETTER_STREAM, seq)
    except NotFoundError:
        return None
    headers = msg.headers or {}
    return DeadLetter(
        seq=seq,
        subject=msg.subject or "",
        original_subject=headers.get(HEADER_ORIGINAL_SUBJECT, ""),
        consumer=headers.get(HEADER_CONSUMER, ""),
        error=headers.get(HEADER_ERROR, ""),
        deliveries=int(headers.get(HEADER_DELIVERIES, "0") or 0),
        data=msg.data or b"",
    )


async def replay(js: JetStreamContext, seq: int) -> DeadLetter:
    """Re-publish one dead letter on its original subject and delete it."""
    letter = await get_dead_letter(js, seq)
    if letter is None or not letter.original_subject:
        raise LookupError(f"no dead letter with sequence {seq}")
    await js.publish(letter.original_subject, letter.data, headers={"Nats-Msg-Id": f"replay:{seq}"})
    await js.delete_msg(DEAD_LETTER_STREAM, seq)
    return letter


async def _main(args: argparse.Namespace) -> int:
    nc = await nats.connect(args.nats)
    try:
        js = nc.jetstream()
        if args.command == "list":
            letters = await list_dead_letters(js)
            for d in letters:
                print(f"{d.seq}\t{d.original_subject}\t{d.consumer}\t{d.deliveries}\t{d.error}")
            print(f"{len(letters)} dead letter(s)", file=sys.stderr)
            return 0
        seqs = [d.seq for d in await list_dead_letters(js)] if args.all else args.seq
        for seq in seqs:
            letter = await replay(js, seq)
            print(f"replayed {seq} -> {letter.original_subject}")
        return 0
    finally:
        await nc.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursemesh.chassis.deadletter")
    # no default: a guessed address would inspect another server than the stack's
    parser.add_argument("--nats", required=True, help="the NATS server's URL")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list dead letters")
    replay_parser = sub.add_parser("replay", help="re-publish dead letters")
    replay_parser.add_argument("seq", type=int, nargs="*")
    replay_parser.add_argument("--all", action="store_true")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
