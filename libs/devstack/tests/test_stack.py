"""The whole stack as real processes, with stand-in service apps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from coursemesh.devstack.infra import S3Config
from coursemesh.devstack.keys import mint_token, verify_token
from coursemesh.devstack.ports import free_port
from coursemesh.devstack.process import find_binary, wait_until
from coursemesh.devstack.pytest_plugin import SmtpServer
from coursemesh.devstack.stack import Stack, StackError
from coursemesh.devstack.supervisor import RestartPolicy
from coursemesh.devstack.testing import assert_pids_gone, processes_with


@pytest.fixture
def external_env(
    postgres_url: str, nats_url: str, s3_config: S3Config, smtp_server: SmtpServer
) -> dict[str, str]:
    """``--external`` variables pointing at the session's servers."""
    return {
        "COURSEMESH_DATABASE_URL": postgres_url,
        "COURSEMESH_NATS_URL": nats_url,
        "COURSEMESH_S3_ENDPOINT": s3_config.endpoint,
        "COURSEMESH_S3_ACCESS_KEY": s3_config.access_key,
        "COURSEMESH_S3_SECRET_KEY": s3_config.secret_key,
        "COURSEMESH_SMTP_HOST": smtp_server.host,
        "COURSEMESH_SMTP_PORT": str(smtp_server.port),
    }


def test_stack_starts_routes_and_stops_without_orphans(
    tmp_path: Path, standin_command: Any, no_migrations: Any
) -> None:
    tag = uuid.uuid4().hex
    data = tmp_path / "data"
    stack = Stack(
        data_dir=data,
        gateway_port=free_port(),
        service_command=standin_command(tag),
        migrate_command=no_migrations,
    )
    try:
        stack.start()
        info = json.loads((data / "stack.json").read_text())
        assert info["state"] == "running"
        gateway = stack.gateway_url
        assert info["gateway_url"] == gateway
        with httpx.Client(base_url=gateway, timeout=10) as client:
            for name in ("catalog", "commerce", "learning", "custom-gen"):
                assert client.get(f"/health/{name}").status_code == 200
            price = client.get("/organizations/o/courses/c/price").json()
            assert price["service"] == "commerce"
            env = price["env"]
            assert env["COMMERCE_DATABASE_URL"] == info["database_url"]
            assert env["COMMERCE_DATABASE_URL"].endswith("/coursemesh")
            assert env["COMMERCE_NATS_URL"] == info["nats_url"]
            assert env["COMMERCE_JWKS_URL"] == f"{gateway}/.well-known/jwks.json"
            assert env["COMMERCE_INSTANCE_ID"] == "commerce-1"
            assert env["COMMERCE_SMTP_PORT"] == str(info["infrastructure"]["smtp"]["port"])
            assert env["COMMERCE_PAYMENT_PROVIDER"] == "sandbox"
            assert env["COMMERCE_OTEL_FILE"].endswith("telemetry/commerce-1.jsonl")
            audio = client.get("/me/custom-courses").json()["env"]
            assert audio["CUSTOMGEN_S3_BUCKET"] == "coursemesh-audio"
            assert audio["CUSTOMGEN_S3_ENDPOINT"] == info["infrastructure"]["s3"]["endpoint"]
            learning = client.get("/me/courses").json()["env"]
            assert learning["LEARNING_S3_BUCKET"] == "coursemesh-certificates"
            assert learning["LEARNING_S3_ENDPOINT"] == info["infrastructure"]["s3"]["endpoint"]
            # a token from the data dir verifies against the JWKS the gateway serves
            jwks = client.get("/.well-known/jwks.json").json()
            assert verify_token(mint_token("u1", data_dir=data), jwks)["sub"] == "u1"
        migrate_log = (data / "logs" / "migrate-catalog.log").read_text()
        assert migrate_log.splitlines()[-1] == "migrated catalog"
        pids = [child.pid for child in stack.children()]
        assert len(pids) == 4 + 5 + 1  # postgres nats s3 smtp, five services, gateway
    finally:
        stack.stop()
    assert_pids_gone(pids)
    assert processes_with(tag) == []
    assert json.loads((data / "stack.json").read_text())["state"] == "stopped"


def test_a_child_that_keeps_crashing_brings_the_stack_down_with_its_log(
    tmp_path: Path, standin_command: Any, no_migrations: Any, external_env: dict[str, str]
) -> None:
    tag = uuid.uuid4().hex
    stack = Stack(
        data_dir=tmp_path / "data",
        gateway_port=free_port(),
        external=True,
        environ=external_env,
        service_command=standin_command(tag, crash={"learning": 1.0}, light=True),
        migrate_command=no_migrations,
        # every restart crashes again after 1 s: the second crash within the window ends it
        restart=RestartPolicy(initial_delay=0.1, max_delay=0.2, max_restarts=1),
    )
    deadline = time.monotonic() + 60

    def run() -> None:
        stack.start()  # the crash may come while starting ...
        stack.wait(until=lambda: time.monotonic() > deadline)  # ... or once running

    try:
        with pytest.raises(StackError) as failure:
            run()
    finally:
        stack.stop()
    message = str(failure.value)
    assert "learning-1" in message
    assert "exited with code 3" in message
    assert "simulated crash" in message  # its last log lines
    assert_pids_gone(child.pid for child in stack.children())
    assert processes_with(tag) == []


def test_a_failing_migration_stops_the_start(tmp_path: Path, external_env: dict[str, str]) -> None:
    def migrate(spec: Any) -> list[str]:
        code = "import sys; print('boom: no such table'); sys.exit(2)"
        return [sys.executable, "-c", code if spec.name == "commerce" else "pass"]

    stack = Stack(
        data_dir=tmp_path / "data",
        gateway_port=free_port(),
        external=True,
        environ=external_env,
        migrate_command=migrate,
    )
    with pytest.raises(StackError, match=r"(?s)migrate-commerce failed \(exit 2\).*boom"):
        stack.start()
    assert stack.children() == []


def test_external_mode_names_every_missing_variable(tmp_path: Path) -> None:
    stack = Stack(data_dir=tmp_path, external=True, environ={"COURSEMESH_NATS_URL": "nats://x:1"})
    with pytest.raises(StackError) as failure:
        stack.start()
    message = str(failure.value)
    for name in (
        "COURSEMESH_DATABASE_URL",
        "COURSEMESH_S3_ENDPOINT",
        "COURSEMESH_S3_ACCESS_KEY",
        "COURSEMESH_S3_SECRET_KEY",
        "COURSEMESH_SMTP_HOST",
        "COURSEMESH_SMTP_PORT",
    ):
        assert name in message
    assert "COURSEMESH_NATS_URL" not in message


def _wait_for_running(stack_json: Path, cli: subprocess.Popen[str]) -> dict[str, Any]:
    def running() -> bool:
        assert cli.poll() is None, cli.communicate()
        return json.loads(stack_json.read_text()).get("state") == "running"

    wait_until(running, timeout=60, what=str(stack_json))
    data: dict[str, Any] = json.loads(stack_json.read_text())
    return data


def test_cli_up_stops_every_child_on_sigterm(
    tmp_path: Path, external_env: dict[str, str], run_cli: Callable[..., subprocess.Popen[str]]
) -> None:
    # services stand in as `python -m http.server` over a directory with health files
    www = tmp_path / "www"
    (www / "health").mkdir(parents=True)
    (www / "health" / "live").write_text("ok")
    (www / "health" / "ready").write_text("ok")
    data = tmp_path / "data"
    cli = run_cli(
        "up", "--external", "--port", str(free_port()), "--data-dir", str(data),
        "--service-command", f"{{python}} -m http.server {{port}} --bind 127.0.0.1 -d {www}",
        "--migrate-command", "{python} -c pass",
        env={**os.environ, **external_env},
    )  # fmt: skip
    info = _wait_for_running(data / "stack.json", cli)
    pids = [info["gateway"]["pid"]] + [r["pid"] for rs in info["services"].values() for r in rs]
    status = run_cli("status", "--data-dir", str(data))
    out, _ = status.communicate(timeout=30)
    assert status.returncode == 0, out
    assert "running" in out
    cli.send_signal(signal.SIGTERM)
    out, _ = cli.communicate(timeout=30)
    assert cli.returncode == 0, out
    assert "stopping (SIGTERM)" in out
    assert_pids_gone(pids)
    assert json.loads((data / "stack.json").read_text())["state"] == "stopped"


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


def test_fresh_refuses_to_wipe_a_directory_that_is_not_a_stack(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(StackError, match="marker"):
        Stack(data_dir=tmp_path, fresh=True, external=True, environ={}).start()
    assert (tmp_path / "precious.txt").exists()
