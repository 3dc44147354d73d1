"""A LISTEN connection that stays open: it reconnects with capped backoff and tells its owner
when it is up and when it is lost.

PostgreSQL does not queue notifications for a listener that is not connected, so whatever was
committed while the connection was down is never announced. Owners must treat ``on_connected``
as "something may have changed" (the relay looks for rows, a cache drops everything) and
``on_lost`` as "from now on I will not hear about changes".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

log = logging.getLogger("coursemesh.notify")

_CLOSE_TIMEOUT_SECONDS = 2.0


def _nothing() -> None:
    return None


async def listen_forever(
    dsn: str,
    channel: str,
    on_notify: Callable[[str], None],
    *,
    name: str,
    on_connected: Callable[[], None] = _nothing,
    on_lost: Callable[[], None] = _nothing,
    application_name: str | None = None,
    health_check_interval: float | None = None,
    min_delay: float = 0.2,
    max_delay: float = 5.0,
) -> None:
    """LISTEN on ``channel`` until cancelled; ``on_notify`` gets each payload.

    ``on_connected`` runs once the LISTEN is registered (after every (re)connect) and
    ``on_lost`` once per connection that was up, when it closes, fails or the task is
    cancelled. ``health_check_interval`` runs ``SELECT 1`` that often: a connection cut without
    a FIN/RST would otherwise look up forever while its notifications are lost.
    ``application_name`` makes the connection easy to find in ``pg_stat_activity``.
    """
    server_settings = {"application_name": application_name} if application_name else None
    delay = min_delay
    while True:
        conn: Any = None
        up = False
        try:
            conn = await asyncpg.connect(dsn, server_settings=server_settings)
            closed = asyncio.Event()
            conn.add_termination_listener(lambda *_, done=closed: done.set())
            await conn.add_listener(channel, lambda _c, _pid, _ch, payload: on_notify(payload))
            up = True
            delay = min_delay
            on_connected()
            await _until_closed(conn, closed, health_check_interval)
            log.warning("%s: LISTEN connection closed; reconnecting", name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: LISTEN connection failed: %s", name, exc)
        finally:
            if up:
                on_lost()
            if conn is not None and not conn.is_closed():
                # close() aborts the socket itself when the server does not answer in time.
                with contextlib.suppress(Exception):
                    await conn.close(timeout=_CLOSE_TIMEOUT_SECONDS)
        await asyncio.sleep(delay)
        delay = min(max_delay, delay * 2)


async def _until_closed(conn: Any, closed: asyncio.Event, interval: float | None) -> None:
    if interval is None:
        await closed.wait()
        return
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closed.wait(), interval)
        if closed.is_set():
            return
        await asyncio.wait_for(conn.fetchval("SELECT 1"), interval)
