"""The server behaviour of a service replica, pinned on a real process.

Every replica runs as :func:`~coursemesh.devstack.services.uvicorn_command` starts it, and the
supervisor, the gateway and the operators rely on how that process behaves, whatever the ASGI
server behind it: a stop signal lets the requests in flight finish and runs the app's shutdown;
the PID is the whole replica (it holds the port, it has no children, so ``kill -9`` of it
leaves nothing serving); and the access log is the app's own, one line per request, with the
server's own access log off. These tests start catalog (the simplest service) on a real
PostgreSQL and NATS, exactly as the stack does, and fail if any of that changes.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs in the lock file
import pytest

from coursemesh.chassis.testing import TestIdentity
from coursemesh.devstack.infra.nats import http_ok
from coursemesh.devstack.ports import free_port, listens
from coursemesh.devstack.process import ManagedProcess, pid_alive, wait_until
from coursemesh.devstack.services import (
    JWT_ISSUER,
    Replica,
    StackEndpoints,
    migrate_command,
    service,
    uvicorn_command,
)
from coursemesh.devstack.stack import Stack, StackConfig

CATALOG = service("catalog")
DEADLINE = 30.0
# How long the test's client holds back the rest of a body after the stop signal: a slow
# client, well within the 10 s a ManagedProcess gives a child to stop before it kills it.
SLOW_CLIENT = 2.0


@dataclass(frozen=True)
class Running:
    """A started replica: its process, its port, where its output goes, a token it accepts."""

    process: ManagedProcess
    port: int
    log_path: Path
    token: str

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def replica(
    request: pytest.FixtureRequest, fresh_database_url: str, nats_url: str, tmp_path: Path
) -> Iterator[Running]:
    """Catalog migrated, then one replica started by ``uvicorn_command``, with the environment
    ``Stack.service_env`` gives it (plus ``request.param``: extra variables) and auth from a
    public key file instead of the gateway's JWKS."""
    identity = TestIdentity(tmp_path / "keys", issuer=JWT_ISSUER)
    overrides: Mapping[str, str] = getattr(request, "param", {})
    stack = Stack(
        StackConfig(
            data_dir=tmp_path,
            services=[CATALOG],
            extra_env={
                "CATALOG_JWKS_URL": "",  # empty is unset: no gateway serves a JWKS here
                "CATALOG_JWT_PUBLIC_KEY_FILE": str(identity.public_key_file),
                **overrides,
            },
        )
    )
    stack.endpoints = StackEndpoints(
        database_url=fresh_database_url,
        nats_url=nats_url,
        gateway_url="http://127.0.0.1:9",  # no gateway: nothing of it is used
        s3_endpoint="http://127.0.0.1:9",  # catalog uses neither S3 nor SMTP
        s3_access_key="unused",
        s3_secret_key="unused",
        smtp_host="127.0.0.1",
        smtp_port=9,
        telemetry_dir=tmp_path / "telemetry",
        sandbox_webhook_key="unused",
    )
    env = stack.service_env(CATALOG, Replica(CATALOG.name, 1))
    migration = ManagedProcess(
        "migrate-catalog",
        migrate_command(CATALOG),
        log_path=tmp_path / "migrate-catalog.log",
        env=env,
    ).start()
    assert migration.wait_stopped(120) == 0, migration.tail()

    port = free_port()
    log_path = tmp_path / "catalog-1.log"
    process = ManagedProcess(
        "catalog-1", uvicorn_command(CATALOG, port), log_path=log_path, env=env
    ).start()
    try:
        wait_until(
            lambda: listens(process.pid, port) and http_ok(f"http://127.0.0.1:{port}/health/live"),
            timeout=60,
            what="catalog-1 live",
            process=process,
        )
        yield Running(process, port, log_path, identity.token(f"user-{uuid.uuid4().hex[:8]}"))
    finally:
        process.stop(timeout=DEADLINE)


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def stays_open_and_silent(sock: socket.socket, seconds: float) -> bool:
    """True when the server neither answers nor closes ``sock`` for ``seconds``."""
    readable, _, _ = select.select([sock], [], [], seconds)
    return not readable


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One complete HTTP/1.1 response (status, headers, body of ``Content-Length`` bytes);
    fails if the server closes or resets the connection before it is complete."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before the response headers: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(body)} of {length} body bytes"
        body += chunk
    return int(status_line.split()[1]), headers, body


def json_lines(text: str) -> list[dict[str, Any]]:
    """The app's log records (JSON lines); uvicorn's own lines are plain text."""
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def access_lines(text: str) -> list[dict[str, Any]]:
    return [r for r in json_lines(text) if r.get("name") == "coursemesh.access"]


@pytest.mark.parametrize(
    ("signum", "exit_code"),
    [
        # uvicorn shuts down gracefully, then restores the default handler and raises the
        # signal again: SIGTERM kills the process with SIGTERM (after a clean shutdown), ...
        (signal.SIGTERM, -signal.SIGTERM),
        # ... SIGINT raises KeyboardInterrupt, which uvicorn's ``run`` swallows: exit code 0.
        (signal.SIGINT, 0),
    ],
    ids=["SIGTERM", "SIGINT"],
)
def test_stop_signal_finishes_the_request_in_flight_then_shuts_the_app_down(
    replica: Running, signum: signal.Signals, exit_code: int
) -> None:
    body = json.dumps(
        {"name": "Server test", "slug": f"srv-{uuid.uuid4().hex[:8]}", "currency": "EUR"}
    ).encode()
    half = len(body) // 2
    with socket.create_connection(("127.0.0.1", replica.port), timeout=DEADLINE) as sock:
        sock.sendall(
            b"POST /organizations HTTP/1.1\r\n"
            b"Host: catalog\r\n"
            b"Authorization: Bearer " + replica.token.encode() + b"\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n"
            # The server answers "100 Continue" once the app waits for the body: from then on
            # the request is in flight in the app, not merely in the kernel's queue.
            b"Expect: 100-continue\r\n\r\n" + body[:half]
        )
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = sock.recv(1)
            assert chunk, "connection closed before 100 Continue"
            interim += chunk
        assert interim.startswith(b"HTTP/1.1 100 "), interim

        os.kill(replica.pid, signum)
        wait_until(
            lambda: refuses_connections(replica.port),
            timeout=DEADLINE,
            what="the replica to refuse new connections",
        )
        assert stays_open_and_silent(sock, SLOW_CLIENT), "the request in flight was dropped"
        assert replica.process.running, "the replica exited with a request in flight"
        assert "Waiting for application shutdown." not in replica.log()

        sock.sendall(body[half:])
        status, headers, answer = read_response(sock)

    assert status == 201, answer
    assert json.loads(answer)["slug"] == json.loads(body)["slug"]
    assert headers["connection"] == "close"
    assert replica.process.wait_stopped(timeout=DEADLINE) == exit_code
    log = replica.log()
    # The app's shutdown began after the request was answered (its access line comes first),
    # and uvicorn writes "complete" only once the app's lifespan exited without error.
    answered = log.index('"POST /organizations 201')
    assert answered < log.index("Waiting for application shutdown.")
    assert "Application shutdown complete." in log
    assert "Traceback" not in log


def test_the_pid_is_the_whole_replica(replica: Running) -> None:
    process = psutil.Process(replica.pid)
    own_listeners = [
        c
        for c in process.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == replica.port
    ]
    assert own_listeners, "the PID itself does not hold the listening socket"
    assert process.children(recursive=True) == []

    os.kill(replica.pid, signal.SIGKILL)
    # Reaped, as the supervisor notices an exit: a multi-threaded process's PID shows as a
    # zombie while its other threads still hold its sockets for a moment.
    assert replica.process.wait_stopped(timeout=DEADLINE) == -signal.SIGKILL
    assert not pid_alive(replica.pid)
    assert refuses_connections(replica.port)


def _get_with_request_id(replica: Running) -> str:
    """``GET /organizations`` with a fresh ``X-Request-ID``; waits for the process to exit
    (SIGTERM) so that its output is complete; returns the request id."""
    rid = str(uuid.uuid4())
    response = httpx.get(
        f"http://127.0.0.1:{replica.port}/organizations",
        headers={"Authorization": f"Bearer {replica.token}", "X-Request-ID": rid},
        timeout=DEADLINE,
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-ID"] == rid
    replica.process.stop(timeout=DEADLINE)
    return rid


def test_one_access_line_per_request_from_the_app_none_from_the_server(
    replica: Running,
) -> None:
    rid = _get_with_request_id(replica)
    log = replica.log()

    lines = [r for r in access_lines(log) if r.get("request_id") == rid]
    assert len(lines) == 1, log
    assert lines[0]["method"] == "GET"
    assert lines[0]["path"] == "/organizations"
    assert lines[0]["status"] == 200
    assert "uvicorn.access" not in log
    assert '"GET /organizations HTTP/1.1" 200' not in log


@pytest.mark.parametrize("replica", [{"CATALOG_ACCESS_LOG": "false"}], indirect=True)
def test_access_log_off_writes_no_access_line(replica: Running) -> None:
    rid = _get_with_request_id(replica)
    log = replica.log()

    assert json_lines(log), "the app logged nothing at all: the check below would prove nothing"
    assert access_lines(log) == []
    assert rid not in log
    assert '"GET /organizations HTTP/1.1" 200' not in log
