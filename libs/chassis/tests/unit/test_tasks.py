"""cancel_and_wait stops a task even when a cancellation is swallowed (unit: no I/O)."""

from __future__ import annotations

import asyncio

from coursemesh.chassis.tasks import cancel_and_wait


async def test_a_task_that_swallows_one_cancellation_is_still_stopped() -> None:
    swallowed = 0
    started = asyncio.Event()

    async def stubborn() -> None:
        nonlocal swallowed
        started.set()
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                if swallowed == 0:  # as asyncio.wait_for can on Python 3.11
                    swallowed += 1
                    continue
                raise

    task = asyncio.create_task(stubborn())
    await started.wait()
    await asyncio.wait_for(cancel_and_wait([task], every=0.05), timeout=10)
    assert task.cancelled()
    assert swallowed == 1


async def test_finished_tasks_are_left_alone() -> None:
    async def quick() -> int:
        return 7

    task = asyncio.create_task(quick())
    await task
    await cancel_and_wait([task])
    assert task.result() == 7
