"""Stopping background tasks for sure."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object]], *, every: float = 1.0) -> None:
    """Cancel the tasks and wait until each has finished, cancelling again while one runs on.

    One ``cancel()`` is not always enough on Python 3.11: ``asyncio.wait_for`` drops a
    cancellation that arrives as its inner awaitable completes, and the loop around it goes on
    (seen here as a relay that kept a service's shutdown waiting forever). Results and errors of
    the tasks are discarded: they are being stopped.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=every)
