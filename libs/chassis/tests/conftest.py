"""Fixtures for the event-spine tests: a fresh database with both demo schemas migrated, clean
JetStream streams, and helpers to run relays and consumers as background tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError

from coursemesh.chassis.bus import Bus, ensure_streams
from coursemesh.chassis.db import Database
from coursemesh.chassis.demo.service import PRODUCER, PROJECTOR
from coursemesh.chassis.migrations import upgrade_head
from coursemesh.chassis.tasks import cancel_and_wait
from coursemesh.contracts import DEAD_LETTER_STREAM


@pytest.fixture
async def spine_db_url(fresh_database_url: str) -> str:
    await upgrade_head(PRODUCER, fresh_database_url)
    await upgrade_head(PROJECTOR, fresh_database_url)
    return fresh_database_url


@pytest.fixture
async def producer_db(spine_db_url: str) -> AsyncIterator[Database]:
    db = Database(spine_db_url, PRODUCER.schema)
    yield db
    await db.dispose()


@pytest.fixture
async def projector_db(spine_db_url: str) -> AsyncIterator[Database]:
    db = Database(spine_db_url, PROJECTOR.schema)
    yield db
    await db.dispose()


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    """A connection with the DEMO and DEADLETTER streams recreated empty for this test."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    for stream in ("DEMO", DEAD_LETTER_STREAM):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)
    await ensure_streams(js, {"demo"})
    await nc.close()
    b = await Bus.connect(nats_url, "spine-test")
    yield b
    await b.close()


@pytest.fixture
async def background() -> AsyncIterator[Callable[[Awaitable[Any]], asyncio.Task[Any]]]:
    """Start coroutines as tasks that are cancelled when the test ends."""
    tasks: list[asyncio.Task[Any]] = []

    def start(coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        tasks.append(task)
        return task

    yield start
    # as services stop theirs: one cancel() can be dropped by a wait_for inside the task
    await cancel_and_wait(tasks)
