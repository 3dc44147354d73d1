"""Stream provisioning on a real JetStream server: a stream is created once, left alone while
it is as wanted (a start updates nothing), and brought back to its configuration when it
differs; replicas are part of that configuration."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import StreamConfig, StreamInfo
from nats.js.errors import NotFoundError

from coursemesh.chassis.bus import Bus, ensure_stream, source_stream_config, stream_differs
from coursemesh.devstack.ports import free_port

SOURCE = "provisioning"


class CountingJetStream:
    """The real JetStream context, counting the calls that change a stream."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self.changes: list[str] = []

    async def stream_info(self, name: str) -> StreamInfo:
        return await self._js.stream_info(name)

    async def add_stream(self, config: StreamConfig) -> StreamInfo:
        self.changes.append("add")
        return await self._js.add_stream(config)

    async def update_stream(self, config: StreamConfig) -> StreamInfo:
        self.changes.append("update")
        return await self._js.update_stream(config)


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[CountingJetStream]:
    nc = await nats.connect(nats_url)
    context = nc.jetstream()
    name = source_stream_config(SOURCE).name
    assert name is not None
    with contextlib.suppress(NotFoundError):
        await context.delete_stream(name)
    yield CountingJetStream(context)
    with contextlib.suppress(NotFoundError):
        await context.delete_stream(name)
    await nc.close()


async def test_a_stream_is_created_once_and_left_alone_while_it_is_as_wanted(
    js: CountingJetStream,
) -> None:
    config = source_stream_config(SOURCE)
    assert await ensure_stream(js, config) is True
    for _ in range(3):  # every later start of every replica
        assert await ensure_stream(js, config) is False
    assert js.changes == ["add"]
    info = await js.stream_info(str(config.name))
    assert info.config.num_replicas == 1
    assert stream_differs(info.config, config) == []


async def test_a_stream_that_drifted_is_brought_back_to_its_configuration(
    js: CountingJetStream,
) -> None:
    config = source_stream_config(SOURCE)
    await ensure_stream(js, config)
    drifted = source_stream_config(SOURCE)
    drifted.max_age = 3600.0
    await js.update_stream(drifted)
    info = await js.stream_info(str(config.name))
    assert stream_differs(info.config, config) == ["max_age"]
    assert await ensure_stream(js, config) is True
    info = await js.stream_info(str(config.name))
    assert stream_differs(info.config, config) == []


def test_replicas_are_part_of_the_wanted_configuration() -> None:
    one, three = source_stream_config(SOURCE), source_stream_config(SOURCE, replicas=3)
    assert (one.num_replicas, three.num_replicas) == (1, 3)
    assert stream_differs(one, three) == ["num_replicas"]


async def test_a_comma_separated_nats_url_is_a_list_of_seed_servers(nats_url: str) -> None:
    """A cluster's servers in one setting: the first is down, the client goes on to the next."""
    down = f"nats://127.0.0.1:{free_port()}"
    bus = await Bus.connect(f"{down}, {nats_url}", "seeds-test")
    try:
        assert bus.connected
        assert (await bus.js.account_info()).streams >= 0
    finally:
        await bus.close()
