"""``coursemesh up --host ADDR --public-url URL``: the gateway binds ADDR, and every service
hands out links under URL (its PUBLIC_BASE_URL), while the stack itself keeps talking to the
gateway over loopback. No LAN needed: 0.0.0.0 and a documentation address (192.0.2.0/24)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from typer.testing import CliRunner

from coursemesh.devstack.cli import app
from coursemesh.devstack.infra.gateway import local_host
from coursemesh.devstack.ports import free_port
from coursemesh.devstack.services import SERVICES, Replica, StackEndpoints
from coursemesh.devstack.stack import Stack, StackError, public_url

LAN_URL = "http://192.0.2.10:8080"


def _endpoints(**overrides: Any) -> StackEndpoints:
    values: dict[str, Any] = {
        "database_url": "postgresql+asyncpg://u@/db",
        "nats_url": "nats://127.0.0.1:1",
        "gateway_url": "http://127.0.0.1:8080",
        "s3_endpoint": "http://127.0.0.1:2",
        "s3_access_key": "a",
        "s3_secret_key": "s",
        "smtp_host": "127.0.0.1",
        "smtp_port": 25,
        "telemetry_dir": Path("/tmp/telemetry"),
        "sandbox_webhook_key": "k",
    }
    return StackEndpoints(**{**values, **overrides})


def test_every_service_gets_the_public_url_as_its_base() -> None:
    endpoints = _endpoints(public_url=LAN_URL)
    for spec in SERVICES:
        env = spec.environment(endpoints, Replica(spec.name, 1))
        assert env[f"{spec.env_prefix}PUBLIC_BASE_URL"] == LAN_URL
        # tokens are still verified against the gateway on loopback
        assert env[f"{spec.env_prefix}JWKS_URL"] == "http://127.0.0.1:8080/.well-known/jwks.json"


def test_without_a_public_url_the_base_is_the_gateway() -> None:
    env = SERVICES[0].environment(_endpoints(), Replica(SERVICES[0].name, 1))
    assert env[f"{SERVICES[0].env_prefix}PUBLIC_BASE_URL"] == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("given", "kept"),
    [(None, None), ("", None), ("http://10.0.0.5:8080/", "http://10.0.0.5:8080"),
     ("https://demo.example.com/api", "https://demo.example.com/api")],
)  # fmt: skip
def test_public_url_is_normalised(given: str | None, kept: str | None) -> None:
    assert public_url(given) == kept


@pytest.mark.parametrize("bad", ["10.0.0.5:8080", "ftp://host", "http://h/?a=1", "http://"])
def test_a_bad_public_url_is_refused(bad: str) -> None:
    with pytest.raises(StackError, match="--public-url"):
        public_url(bad)


def test_cli_refuses_a_bad_public_url_before_starting_anything(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["up", "--data-dir", str(tmp_path / "data"), "--public-url", "host:8080"]
    )
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "data").exists()


def test_local_host_of_a_bind_address() -> None:
    assert local_host("0.0.0.0") == "127.0.0.1"
    assert local_host("127.0.0.1") == "127.0.0.1"
    assert local_host("192.0.2.10") == "192.0.2.10"


def test_stack_binds_the_host_and_hands_out_the_public_url(
    tmp_path: Path, standin_command: Any, no_migrations: Any
) -> None:
    data = tmp_path / "data"
    port = free_port()
    stack = Stack(
        data_dir=data,
        gateway_port=port,
        gateway_host="0.0.0.0",
        public_url=LAN_URL + "/",
        service_command=standin_command(uuid.uuid4().hex),
        migrate_command=no_migrations,
    )
    try:
        stack.start()
        assert stack.gateway is not None
        assert stack.gateway.environment()["GATEWAY_BIND"] == "0.0.0.0"
        gateway_pid = stack.gateway.pid
        assert gateway_pid is not None
        listening = {
            (c.laddr.ip, c.laddr.port)
            for c in psutil.Process(gateway_pid).net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN
        }
        # every interface (Go listens dual-stack on "::" for 0.0.0.0), not loopback only
        assert listening & {("0.0.0.0", port), ("::", port)}, listening
        assert ("127.0.0.1", port) not in listening, listening
        assert stack.gateway_url == f"http://127.0.0.1:{port}"
        info = json.loads((data / "stack.json").read_text())
        assert info["public_url"] == LAN_URL
        assert info["gateway"]["bind"] == "0.0.0.0"
        with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
            env = client.get("/organizations/o/courses/c/price").json()["env"]
        assert env["COMMERCE_PUBLIC_BASE_URL"] == LAN_URL
        assert env["COMMERCE_JWKS_URL"] == f"http://127.0.0.1:{port}/.well-known/jwks.json"
    finally:
        stack.stop()
