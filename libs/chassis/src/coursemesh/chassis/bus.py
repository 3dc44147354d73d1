"""NATS JetStream connection and idempotent stream provisioning."""

from __future__ import annotations

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
        )
        return cls(nc, nc.jetstream())

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    async def close(self) -> None:
        if not self.nc.is_closed:
            await self.nc.drain()


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
