"""Helpers for tests of every service: waiting on a condition with a deadline (never a sleep)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def wait_for(
    predicate: Callable[[], Awaitable[bool]],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
) -> None:
    """Poll an async condition until it holds; raise AssertionError at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await predicate():
            return
        if loop.time() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s")
        await asyncio.sleep(interval)
