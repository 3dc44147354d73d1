"""``wait()`` heals the stack: a crashed replica or server comes back on its ports with its data,
a child stopped on purpose stays down, a crash loop stops everything naming the culprit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest

from coursemesh.devstack.ports import free_port
from coursemesh.devstack.process import find_binary, wait_until
from coursemesh.devstack.stack import ReplicaProcess, Stack
from coursemesh.devstack.supervisor import RestartPolicy
from coursemesh.devstack.testing import assert_pids_gone, processes_with

LIGHT_STANDIN = Path(__file__).with_name("light_standin.py")
FAST = RestartPolicy(initial_delay=0.2, max_delay=1.0, max_restarts=5, window=60.0)


def supervise_until(stack: Stack, condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Run the supervisor (``stack.wait``) until ``condition()`` holds, at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    stack.wait(until=lambda: condition() or time.monotonic() > deadline)
    assert condition(), f"timed out after {timeout}s waiting for {what}"


@pytest.fixture(scope="module")
def healing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, list[str]]]:
    """A whole embedded stack (PostgreSQL, NATS, S3, SMTP, gateway) with two light stand-in
    replicas per service, and the supervisor's log lines."""
    tag = uuid.uuid4().hex

    def command(spec: Any, port: int) -> list[str]:
        argv = [sys.executable, str(LIGHT_STANDIN), "--name", spec.name, "--port", str(port)]
        return [*argv, "--tag", tag]

    lines: list[str] = []
    stack = Stack(
        data_dir=tmp_path_factory.mktemp("healing") / "data",
        gateway_port=free_port(),
        replicas=2,
        service_command=command,
        migrate_command=None,
        restart=FAST,
        log=lines.append,
    )
    try:
        stack.start()
        yield stack, lines
        pids = [child.pid for child in stack.children()]
    finally:
        stack.stop()
    assert_pids_gone(pids)
    assert processes_with(tag) == []


def _replica(stack: Stack, instance: str) -> ReplicaProcess:
    return next(rp for rp in stack.replicas if rp.replica.instance_id == instance)


def _stack_json(stack: Stack) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(stack.stack_json.read_text())
    return data


def _through_gateway(stack: Stack, name: str) -> bool:
    response = httpx.get(f"{stack.gateway_url}/health/{name}", timeout=5)
    return response.status_code == 200 and response.json()["service"] == name


def _back(stack: Stack, name: str, after: int) -> Callable[[], bool]:
    """True once ``name`` has more than ``after`` restarts and the last one is ready."""

    def check() -> bool:
        records = [r for r in stack.supervisor.history if r.name == name]
        return len(records) > after and records[-1].ready_at is not None

    return check


def test_backoff_doubles_up_to_its_cap_and_a_crash_loop_is_a_count_in_a_window() -> None:
    policy = RestartPolicy()
    assert [policy.delay(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert (policy.max_restarts, policy.window) == (5, 60.0)
    with pytest.raises(ValueError):
        RestartPolicy(initial_delay=2, max_delay=1)


def test_a_killed_replica_comes_back_on_its_port_and_answers_through_the_gateway(
    healing: tuple[Stack, list[str]],
) -> None:
    stack, lines = healing
    rp = _replica(stack, "catalog-1")
    old_pid, port = rp.process.pid, rp.port
    assert old_pid is not None
    restarts = stack.supervisor.restarts_of("catalog-1")
    os.kill(old_pid, signal.SIGKILL)
    supervise_until(stack, _back(stack, "catalog-1", restarts), 20, "catalog-1 back")
    assert rp.port == port  # same port: the gateway's upstreams stay right
    assert rp.process.pid != old_pid
    assert rp.owns_port()
    assert _through_gateway(stack, "catalog")
    assert any(
        line.startswith(f"catalog-1 (PID {old_pid}) was killed by SIGKILL; restart 1 in 0.2s")
        for line in lines
    ), lines
    assert any(line.startswith("catalog-1 is back") for line in lines), lines
    assert "was killed by SIGKILL; restart 1" in (stack.logs_dir / "supervisor.log").read_text()
    info = _stack_json(stack)
    catalog = {r["instance"]: r for r in info["services"]["catalog"]}
    assert catalog["catalog-1"]["pid"] == rp.process.pid
    assert catalog["catalog-1"]["port"] == port
    assert info["restarts"]["catalog-1"] == restarts + 1
    assert info["state"] == "running"
    stack.check()


async def _make_stream(url: str) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="HEALING", subjects=["healing.>"])
        await js.publish("healing.one", b"kept")
    finally:
        await nc.close()


async def _stream_messages(url: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info("HEALING")
        return int(info.state.messages)
    finally:
        await nc.close()


async def _sql(url: str, *statements: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        result = None
        for statement in statements:
            result = await conn.fetchval(statement)
        return result
    finally:
        await conn.close()


def test_killed_nats_and_postgres_come_back_with_their_data(
    healing: tuple[Stack, list[str]],
) -> None:
    stack, lines = healing
    assert stack.nats is not None
    assert stack.postgres is not None
    nats_url, pg_url = stack.nats.url, stack.postgres.url
    asyncio.run(_make_stream(nats_url))
    asyncio.run(
        _sql(
            pg_url,
            "CREATE TABLE healing (x int)",
            "INSERT INTO healing VALUES (42)",
        )
    )
    old = {"nats": stack.nats.pid, "postgres": stack.postgres.pid}
    before = {name: stack.supervisor.restarts_of(name) for name in old}
    for pid in old.values():
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    supervise_until(
        stack,
        lambda: all(_back(stack, name, before[name])() for name in old),
        30,
        "NATS and PostgreSQL back",
    )
    assert stack.nats.url == nats_url
    assert stack.postgres.url == pg_url
    assert asyncio.run(_stream_messages(nats_url)) == 1  # the JetStream store was reused
    assert asyncio.run(_sql(pg_url, "SELECT x FROM healing")) == 42  # so was the data dir
    for name in old:
        assert any(line.startswith(f"{name} (PID {old[name]}) was killed") for line in lines)
    info = _stack_json(stack)
    assert info["infrastructure"]["nats"]["pid"] == stack.nats.pid != old["nats"]
    assert info["infrastructure"]["postgres"]["pid"] == stack.postgres.pid != old["postgres"]
    for name in ("catalog", "commerce", "learning", "custom-gen"):
        assert _through_gateway(stack, name)
    for record in stack.supervisor.history:
        print(f"{record.name}: {record.reason}, ready again after {record.downtime:.2f}s")


def test_a_service_stopped_on_purpose_stays_down_until_started(
    healing: tuple[Stack, list[str]],
) -> None:
    stack, lines = healing
    stack.stop_service("learning")
    quiet_until = time.monotonic() + 1.5  # five backoffs' worth: a crash would be restarted
    stack.wait(until=lambda: time.monotonic() > quiet_until)
    assert not any(rp.process.running for rp in stack.replicas if rp.spec.name == "learning")
    assert not any(line.startswith("learning-") for line in lines)
    stack.check()  # stopped on purpose is not a crash
    stack.start_service("learning")  # both replicas, each on its port, then through the gateway
    assert _through_gateway(stack, "learning")
    # supervised again: a crash now is healed
    rp = _replica(stack, "learning-2")
    assert rp.process.pid is not None
    os.kill(rp.process.pid, signal.SIGKILL)
    supervise_until(stack, _back(stack, "learning-2", 0), 20, "learning-2 back")


@pytest.fixture
def run_cli() -> Callable[..., subprocess.Popen[str]]:
    binary = str(find_binary("coursemesh"))

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [binary, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**(env or os.environ), "COLUMNS": "200"},
        )

    return run


def test_a_crash_loop_stops_make_up_naming_the_child_and_its_last_lines(
    tmp_path: Path, external_env: dict[str, str], run_cli: Callable[..., subprocess.Popen[str]]
) -> None:
    # Each replica serves the first time and refuses every later start: once killed, it loops.
    www = tmp_path / "www"
    (www / "health").mkdir(parents=True)
    (www / "health" / "live").write_text("ok")
    (www / "health" / "ready").write_text("ok")
    marker = tmp_path / "started-{name}"
    template = (
        f"sh -c 'if [ -e {marker} ]; then echo refusing to start again; exit 7; fi; "
        f"touch {marker}; exec {{python}} -m http.server {{port}} --bind 127.0.0.1 -d {www}'"
    )
    data = tmp_path / "data"
    cli = run_cli(
        "up", "--external", "--port", str(free_port()), "--data-dir", str(data),
        "--service-command", template, "--migrate-command", "{python} -c pass",
        "--max-restarts", "2", "--restart-delay", "0.1", "--restart-max-delay", "0.2",
        env={**os.environ, **external_env},
    )  # fmt: skip
    stack_json = data / "stack.json"

    def running() -> bool:
        assert cli.poll() is None, cli.communicate()
        return bool(json.loads(stack_json.read_text()).get("state") == "running")

    wait_until(running, timeout=60, what=str(stack_json))
    info = json.loads(stack_json.read_text())
    pids = [info["gateway"]["pid"]] + [r["pid"] for rs in info["services"].values() for r in rs]
    victim = info["services"]["commerce"][0]["pid"]
    os.kill(victim, signal.SIGKILL)
    out, _ = cli.communicate(timeout=60)
    assert cli.returncode == 1, out
    assert f"commerce-1 (PID {victim}) was killed by SIGKILL; restart 1 in 0.1s" in out
    assert "commerce-1 restarted as PID" in out
    failure = out[out.index("stack failed:") :]
    assert "commerce-1" in failure
    assert "exited with code 7" in failure
    assert "crash loop: 2 restarts within 60s" in failure
    assert "refusing to start again" in failure  # its last log lines
    assert "all processes stopped" in out
    assert_pids_gone(pids)
    assert json.loads(stack_json.read_text())["state"] == "stopped"


@pytest.fixture
def external_env(
    postgres_url: str, nats_url: str, s3_config: Any, smtp_server: Any
) -> dict[str, str]:
    return {
        "COURSEMESH_DATABASE_URL": postgres_url,
        "COURSEMESH_NATS_URL": nats_url,
        "COURSEMESH_S3_ENDPOINT": s3_config.endpoint,
        "COURSEMESH_S3_ACCESS_KEY": s3_config.access_key,
        "COURSEMESH_S3_SECRET_KEY": s3_config.secret_key,
        "COURSEMESH_SMTP_HOST": smtp_server.host,
        "COURSEMESH_SMTP_PORT": str(smtp_server.port),
    }
