"""NATS JetStream connection and idempotent stream provisioning."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
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

        nc = await nats.connect(
            url,
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
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT_SECONDS + CLOSE_TIMEOUT_SECONDS):
                if self.nc.is_connected:
                    await self.nc.drain()
                else:
                    # nats-py refuses to drain while (re)connecting; nothing could be flushed.
                    await self.nc.close()
        except Exception as exc:  # the server went away mid-drain, or the drain overran
            log.warning("nats: closing without a drain: %r", exc)
        if not self.nc.is_closed:
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                    await self.nc.close()
            except Exception as exc:
                log.warning("nats: close failed: %r", exc)


def source_stream_config(source: str) -> StreamConfig:
    return StreamConfig(
        name=stream_for_source(source),
        subjects=stream_subjects(source),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=STREAM_MAX_AGE_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
    )


def dead_letter_stream_config() -> StreamConfig:
    return StreamConfig(
        name=DEAD_LETTER_STREAM,
        subjects=[f"{DEAD_LETTER_PREFIX}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=STREAM_MAX_AGE_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or bring an existing one to ``config``. Safe to run concurrently."""
    assert config.name is not None
    try:
        await js.stream_info(config.name)
    except NotFoundError:
        try:
            await js.add_stream(config)
            return
        except Exception:  # another replica created it first
            await js.stream_info(config.name)
    await js.update_stream(config)


async def ensure_streams(js: JetStreamContext, sources: Iterable[str]) -> None:
    for source in sorted(set(sources)):
        await ensure_stream(js, source_stream_config(source))
    await ensure_stream(js, dead_letter_stream_config())
