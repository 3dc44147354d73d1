"""NATS JetStream connection and idempotent stream provisioning."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig, StreamInfo
from nats.js.errors import NotFoundError

from coursemesh.contracts import DEAD_LETTER_STREAM, stream_for_source, stream_subjects
from coursemesh.contracts.subjects import DEAD_LETTER_PREFIX

log = logging.getLogger("coursemesh.bus")

DUPLICATE_WINDOW_SECONDS = 120.0
STREAM_MAX_AGE_SECONDS = 30 * 24 * 3600.0
#: How long a shutdown lets subscriptions finish the messages they hold (nats-py: 30 s).
DRAIN_TIMEOUT_SECONDS = 5
#: Past the drain, how long a close may take (it flushes what is buffered, then hangs up).
CLOSE_TIMEOUT_SECONDS = 2.0


class Bus:
    """One NATS connection per process, with its JetStream context."""

    def __init__(self, nc: NatsClient, js: JetStreamContext) -> None:
        self.nc = nc
        self.js = js

    @classmethod
    async def connect(cls, url: str, name: str) -> Bus:
        async def on_error(exc: Exception) -> None:
            log.warning("nats error: %s", exc)

        async def on_disconnect() -> None:
            log.warning("nats disconnected")

        async def on_reconnect() -> None:
            log.info("nats reconnected")

        # Several seed servers of a cluster, comma-separated: the client tries each, then learns
        # the rest of the cluster from the one it reaches.
        servers = [part.strip() for part in url.split(",") if part.strip()]
        nc = await nats.connect(
            servers,
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            drain_timeout=DRAIN_TIMEOUT_SECONDS,
        )
        return cls(nc, nc.jetstream())

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    async def close(self) -> None:
        """Drain when connected (subscriptions finish what they hold, buffered publishes are
        flushed), else just close; never raises, so a shutdown after losing the server completes.
        """
        if self.nc.is_closed:
            return
        if self.nc.is_connected:
            await _bounded(self.nc.drain(), DRAIN_TIMEOUT_SECONDS + CLOSE_TIMEOUT_SECONDS, "drain")
        if not self.nc.is_closed:
            # nats-py refuses to drain while (re)connecting; nothing could be flushed.
            await _bounded(self.nc.close(), CLOSE_TIMEOUT_SECONDS, "close")


async def _bounded(step: Coroutine[Any, Any, None], seconds: float, what: str) -> None:
    """Run a closing step of nats-py for at most ``seconds``, in a task of its own: nats-py
    swallows a cancellation while it waits for its reconnection task, so a timeout around it
    in this task could be lost and the wait for a dead socket to close never end."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        log.warning("nats: %s did not finish within %ss; closing without it", what, seconds)
    elif task.exception() is not None:  # the server went away mid-drain
        log.warning("nats: %s failed: %r", what, task.exception())


def source_stream_config(source: str, replicas: int = 1) -> StreamConfig:
    """A source's stream; ``replicas`` copies on a JetStream cluster (1 on a single server;
    its consumers inherit it)."""
    return StreamConfig(
        name=stream_for_source(source),
        subjects=stream_subjects(source),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=STREAM_MAX_AGE_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=replicas,
    )


def dead_letter_stream_config(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=DEAD_LETTER_STREAM,
        subjects=[f"{DEAD_LETTER_PREFIX}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=STREAM_MAX_AGE_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=replicas,
    )


#: The parts of a stream's configuration coursemesh sets; the rest is the server's.
_MANAGED = (
    "subjects",
    "retention",
    "storage",
    "discard",
    "max_age",
    "duplicate_window",
    "num_replicas",
)


def stream_differs(current: StreamConfig, wanted: StreamConfig) -> list[str]:
    """The managed fields in which the stream as it is differs from ``wanted`` (subjects
    compared as sets; durations to the millisecond, as the server keeps them)."""
    changed: list[str] = []
    for name in _MANAGED:
        have, want = getattr(current, name), getattr(wanted, name)
        if name == "subjects":
            have, want = sorted(have or []), sorted(want or [])
        elif isinstance(want, float):
            have, want = round(have or 0.0, 3), round(want, 3)
        if have != want:
            changed.append(name)
    return changed


class StreamAdmin(Protocol):
    """What provisioning needs of a JetStream context."""

    async def stream_info(self, name: str) -> StreamInfo: ...

    async def add_stream(self, config: StreamConfig) -> StreamInfo: ...

    async def update_stream(self, config: StreamConfig) -> StreamInfo: ...


async def ensure_stream(js: StreamAdmin, config: StreamConfig) -> bool:
    """Create the stream, or bring an existing one to ``config`` when it differs (a start
    changes nothing on a stream already as wanted). Safe to run concurrently. True when the
    stream was created or updated."""
    assert config.name is not None
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        try:
            await js.add_stream(config)
            return True
        except Exception:  # another replica created it first
            info = await js.stream_info(config.name)
    changed = stream_differs(info.config, config)
    if not changed:
        return False
    log.warning("stream %s: updating %s", config.name, ", ".join(changed))
    await js.update_stream(config)
    return True


async def ensure_streams(js: StreamAdmin, sources: Iterable[str], replicas: int = 1) -> None:
    for source in sorted(set(sources)):
        await ensure_stream(js, source_stream_config(source, replicas))
    await ensure_stream(js, dead_letter_stream_config(replicas))
