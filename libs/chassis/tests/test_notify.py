"""listen_forever: delivers payloads, reports each connection's start and end, reconnects after
the server drops it, keeps retrying an unreachable server, and notices a connection that hangs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from coursemesh.chassis.db import asyncpg_dsn
from coursemesh.chassis.notify import listen_forever
from coursemesh.chassis.testing import wait_for

Background = Callable[[Any], "asyncio.Task[Any]"]


def until(condition: Callable[[], bool]) -> Callable[[], Any]:
    async def check() -> bool:
        return condition()

    return check


async def test_payloads_arrive_and_a_dropped_connection_is_replaced(
    fresh_database_url: str, background: Background
) -> None:
    dsn = asyncpg_dsn(fresh_database_url)
    app_name = f"notify-test-{uuid.uuid4().hex[:8]}"
    payloads: list[str] = []
    events: list[str] = []
    task = background(
        listen_forever(
            dsn,
            "test_channel",
            payloads.append,
            on_connected=lambda: events.append("up"),
            on_lost=lambda: events.append("down"),
            name="test",
            application_name=app_name,
            min_delay=0.01,
        )
    )
    admin = await asyncpg.connect(dsn)
    try:
        await wait_for(until(lambda: events == ["up"]), message="connected")
        await admin.execute("SELECT pg_notify('test_channel', 'one')")
        await wait_for(until(lambda: payloads == ["one"]), message="first payload")

        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            app_name,
        )
        await wait_for(until(lambda: events == ["up", "down", "up"]), message="reconnected")
        await admin.execute("SELECT pg_notify('test_channel', 'two')")
        await wait_for(until(lambda: payloads == ["one", "two"]), message="payload after reconnect")
    finally:
        await admin.close()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["up", "down", "up", "down"]  # cancelling ends the connection too


async def test_an_unreachable_server_is_retried_without_reporting_a_connection(
    monkeypatch: pytest.MonkeyPatch, background: Background
) -> None:
    attempts: list[str] = []

    async def refuse(dsn: str, **_: Any) -> Any:
        attempts.append(dsn)
        raise OSError("connection refused")

    monkeypatch.setattr(asyncpg, "connect", refuse)
    events: list[str] = []
    task = background(
        listen_forever(
            "postgresql://nowhere/db",
            "test_channel",
            lambda _: None,
            on_connected=lambda: events.append("up"),
            on_lost=lambda: events.append("down"),
            name="test",
            min_delay=0.001,
            max_delay=0.01,
        )
    )
    await wait_for(until(lambda: len(attempts) >= 3), message="retries")
    assert not task.done()
    assert events == []


class _HangingConnection:
    """Registers the LISTEN, then stops answering, as after a cut nobody was told about."""

    def add_termination_listener(self, _callback: Any) -> None:
        pass

    async def add_listener(self, _channel: str, _callback: Any) -> None:
        pass

    async def fetchval(self, _query: str) -> Any:
        await asyncio.Event().wait()

    def is_closed(self) -> bool:
        return False

    async def close(self, *, timeout: float | None = None) -> None:
        pass


async def test_a_connection_that_stops_answering_counts_as_lost(
    monkeypatch: pytest.MonkeyPatch, background: Background
) -> None:
    async def connect(_dsn: str, **_: Any) -> Any:
        return _HangingConnection()

    monkeypatch.setattr(asyncpg, "connect", connect)
    events: list[str] = []
    background(
        listen_forever(
            "postgresql://somewhere/db",
            "test_channel",
            lambda _: None,
            on_connected=lambda: events.append("up"),
            on_lost=lambda: events.append("down"),
            name="test",
            health_check_interval=0.01,
            min_delay=0.001,
        )
    )
    await wait_for(until(lambda: events[:3] == ["up", "down", "up"]), message="hang detected")
