"""Another program on a port the stack wants: the stack takes another port (or fails fast when
the port was asked for), holds its ports until its children bind them, and never mistakes the
other program's answers for its own children's."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from coursemesh.devstack.infra import CaddyGateway
from coursemesh.devstack.ports import free_port
from coursemesh.devstack.process import DevstackError
from coursemesh.devstack.stack import Stack, StackError
from coursemesh.devstack.testing import assert_pids_gone, processes_with


class _Foreign(BaseHTTPRequestHandler):
    """Another stack's gateway, as far as a health check can tell: 200 on every GET."""

    def do_GET(self) -> None:
        body = json.dumps({"status": "ok", "service": "foreign", "foreign": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_foreign(port: int) -> ThreadingHTTPServer:
    """Listen on 127.0.0.1:``port`` (``SO_REUSEADDR``, like most servers) in a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _Foreign)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def foreign() -> Iterator[int]:
    """The port of a foreign HTTP server answering 200 to everything."""
    server = serve_foreign(0)
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def light_stack(
    tmp_path: Path,
    standin_command: Any,
    postgres_url: str,
    nats_url: str,
    s3_config: Any,
    smtp_server: Any,
) -> Iterator[tuple[Stack, list[str]]]:
    """An unstarted stack on the session's servers with light stand-ins; stopped after."""
    tag = uuid.uuid4().hex
    lines: list[str] = []
    environ = {
        "COURSEMESH_DATABASE_URL": postgres_url,
        "COURSEMESH_NATS_URL": nats_url,
        "COURSEMESH_S3_ENDPOINT": s3_config.endpoint,
        "COURSEMESH_S3_ACCESS_KEY": s3_config.access_key,
        "COURSEMESH_S3_SECRET_KEY": s3_config.secret_key,
        "COURSEMESH_SMTP_HOST": smtp_server.host,
        "COURSEMESH_SMTP_PORT": str(smtp_server.port),
    }
    stack = Stack(
        data_dir=tmp_path / "data",
        external=True,
        environ=environ,
        service_command=standin_command(tag, light=True),
        migrate_command=None,
        log=lines.append,
    )
    try:
        yield stack, lines
    finally:
        pids = [child.pid for child in stack.children()]
        stack.stop()
        assert_pids_gone(pids)
        assert processes_with(tag) == []


def _ours(stack: Stack) -> None:
    """Every service answers through the stack's gateway, from the stack's own stand-ins."""
    for name in ("catalog", "commerce", "learning", "custom-gen"):
        body = httpx.get(f"{stack.gateway_url}/health/{name}", timeout=5).json()
        assert body["service"] == name


def test_a_busy_preferred_gateway_port_is_left_alone_and_the_choice_is_printed(
    light_stack: tuple[Stack, list[str]], foreign: int
) -> None:
    stack, lines = light_stack
    stack.config.preferred_gateway_port = foreign
    stack.start()
    assert stack.gateway is not None
    assert stack.gateway.port != foreign
    assert any(
        line.startswith(f"port {foreign} is already in use (held by PID {os.getpid()}")
        and line.endswith(f"the gateway listens on port {stack.gateway.port} instead")
        for line in lines
    ), lines
    _ours(stack)


def test_a_busy_pinned_gateway_port_fails_fast_naming_the_holder(
    light_stack: tuple[Stack, list[str]], foreign: int
) -> None:
    stack, _ = light_stack
    stack.config.gateway_port = foreign
    with pytest.raises(StackError) as failure:
        stack.start()
    message = str(failure.value)
    assert f"gateway port {foreign} is already in use (held by PID {os.getpid()}" in message
    assert stack.children() == []  # failed before starting anything


def test_ports_are_held_while_the_stack_starts_so_a_second_server_cannot_take_them(
    light_stack: tuple[Stack, list[str]], standin_command: Any
) -> None:
    # Another program tries to listen on the stack's gateway port after the stack chose it
    # (two stacks started at the same time): it must fail, and the stack's gateway gets it.
    stack, _ = light_stack
    preferred = free_port()
    stack.config.preferred_gateway_port = preferred
    build = stack.config.service_command
    attempts: list[BaseException | ThreadingHTTPServer] = []

    def command(spec: Any, port: int) -> Any:
        if not attempts:  # services start after the gateway port was chosen
            try:
                attempts.append(serve_foreign(preferred))
            except OSError as exc:
                attempts.append(exc)
        return build(spec, port)

    stack.config.service_command = command
    try:
        stack.start()
        assert isinstance(attempts[0], OSError), "a foreign server could bind a held port"
        assert stack.gateway_url == f"http://127.0.0.1:{preferred}"
        _ours(stack)
    finally:
        for attempt in attempts:
            if isinstance(attempt, ThreadingHTTPServer):
                attempt.shutdown()
                attempt.server_close()


def test_readiness_never_passes_against_a_foreign_server_on_the_childs_port(
    tmp_path: Path, foreign: int
) -> None:
    # The gateway is given a port another server listens on: that server answers
    # /health/gateway with 200, but it is not our child, so the gateway is never "ready".
    gateway = CaddyGateway({}, port=foreign, state_dir=tmp_path / "caddy")
    with pytest.raises(DevstackError) as failure:
        gateway.start(timeout=10)
    message = str(failure.value)
    assert "gateway" in message
    assert f"port {foreign} is in use by another process (held by PID {os.getpid()}" in message
    assert_pids_gone([gateway.pid])
