"""Development SMTP server: every received message becomes an ``.eml`` file in a directory.

Run as ``python -m coursemesh.devstack.smtp --port P --dir D``; stops on SIGTERM/SIGINT.
Each file starts with ``X-Envelope-From`` / ``X-Envelope-To`` headers (the SMTP envelope,
which also shows Bcc recipients), followed by the message exactly as received.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from coursemesh.devstack.mailbox import Mailbox

__all__ = ["Mailbox", "MaildirHandler", "main", "serve"]


class MaildirHandler:
    """aiosmtpd handler writing each message atomically (temp file + rename)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        header = (
            f"X-Envelope-From: {envelope.mail_from}\r\n"
            f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(header + content)
        os.replace(tmp, self.directory / f"{name}.eml")
        return "250 Message accepted for delivery"


async def serve(host: str, port: int, directory: Path) -> None:
    """Serve until SIGTERM or SIGINT."""
    from aiosmtpd.smtp import SMTP

    handler = MaildirHandler(directory)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, enable_SMTPUTF8=True, hostname="coursemesh-dev"), host, port
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"smtp: listening on {host}:{port}, writing to {directory}", flush=True)
    await stop.wait()
    server.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.dir))


if __name__ == "__main__":
    main()
