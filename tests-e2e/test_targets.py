"""Offline checks of the compose target (``targets.py``): the exact ``docker compose`` commands
it runs per topology, the override it merges, how it reports a missing Docker, how it reads
Mailpit, and the compose-file assumptions its scaling relies on. No Docker engine needed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from targets import (
    COMPOSE_FILE,
    ComposeError,
    ComposeStack,
    MailpitMailbox,
    compose_unavailable,
    run_command,
    target_name,
)

KEY = {"COMMERCE_SANDBOX_WEBHOOK_KEY": "k-123"}


class Recorder:
    """A fake ``Runner``: records every argv, answers from ``replies`` (by a word in argv)."""

    def __init__(self, replies: dict[str, tuple[int, str, str]] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.replies = replies or {}

    def __call__(self, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        for word, (rc, out, err) in self.replies.items():
            if word in argv:
                return subprocess.CompletedProcess(list(argv), rc, out, err)
        return subprocess.CompletedProcess(list(argv), 0, "", "")


def base(data: Path) -> list[str]:
    return [
        "docker", "compose", "-p", "coursemesh-e2e",
        "-f", str(COMPOSE_FILE), "-f", str(data / "compose.e2e.json"),
        "--env-file", str(data / "compose.e2e.env"),
    ]  # fmt: skip


def test_target_name_defaults_to_embedded_and_rejects_unknown() -> None:
    assert target_name({}) == "embedded"
    assert target_name({"COURSEMESH_E2E_TARGET": "compose"}) == "compose"
    with pytest.raises(ValueError, match="expected one of embedded, compose"):
        target_name({"COURSEMESH_E2E_TARGET": "k8s"})


@pytest.mark.parametrize(("replicas", "scale"), [(1, "1"), (2, "2")], ids=["single", "replicas2"])
def test_up_and_down_argv_per_topology(tmp_path: Path, replicas: int, scale: str) -> None:
    stack = ComposeStack(tmp_path, replicas, KEY)
    assert stack.up_argv() == [
        *base(tmp_path), "up", "-d", "--build", "--wait",
        "--scale", f"catalog={scale}", "--scale", f"commerce={scale}",
        "--scale", f"learning={scale}", "--scale", f"custom-gen={scale}",
        "--scale", f"integrations={scale}",
    ]  # fmt: skip
    assert stack.down_argv() == [*base(tmp_path), "down", "-v", "--remove-orphans"]
    assert stack.private_key_argv() == [
        *base(tmp_path), "run", "--rm", "-T", "--no-deps",
        "--entrypoint", "cat", "dev-keys", "/keys/private.pem",
    ]  # fmt: skip
    assert stack.config.replicas == replicas
    assert sorted({r.spec.name for r in stack.replicas}) == [
        "catalog", "commerce", "custom-gen", "integrations", "learning",
    ]  # fmt: skip
    assert len(stack.replicas) == 5 * replicas


def test_override_adds_key_span_files_and_s3_port(tmp_path: Path) -> None:
    stack = ComposeStack(tmp_path, 2, KEY)
    stack.prepare()
    doc = json.loads(stack.override_file.read_text())
    assert doc == stack.override()
    services = doc["services"]
    commerce = services["commerce"]
    assert commerce["environment"] == {
        "COMMERCE_OTEL_EXPORTER": "file",
        "COMMERCE_SANDBOX_WEBHOOK_KEY": "k-123",
    }
    assert commerce["entrypoint"] == [
        "sh", "-c",
        'export COMMERCE_OTEL_FILE="/telemetry/commerce-$${HOSTNAME}.jsonl"; exec "$$@"', "sh",
    ]  # fmt: skip
    assert commerce["volumes"] == [f"{tmp_path / 'telemetry'}:/telemetry"]
    assert services["custom-gen"]["environment"] == {"CUSTOMGEN_OTEL_EXPORTER": "file"}
    assert services["s3"] == {"ports": ["127.0.0.1::8333"]}
    assert (tmp_path / "telemetry").stat().st_mode & 0o777 == 0o777  # uid 10001 writes there
    assert stack.service_env(stack.replicas[2].spec, 1)["COMMERCE_SANDBOX_WEBHOOK_KEY"] == "k-123"
    # docker-compose.yml requires the key while compose reads it, before the override merges
    assert stack.env_file.read_text() == "COMMERCE_SANDBOX_WEBHOOK_KEY=k-123\n"
    assert stack.env_file.stat().st_mode & 0o077 == 0


def test_compose_file_allows_scaling_and_the_target_reads_what_it_publishes() -> None:
    """What ``--scale <svc>=2`` and the target rely on in docker-compose.yml."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    gateway_env = services["gateway"]["environment"]
    for name, variable in [
        ("catalog", "CATALOG_UPSTREAMS"),
        ("commerce", "COMMERCE_UPSTREAMS"),
        ("learning", "LEARNING_UPSTREAMS"),
        ("custom-gen", "CUSTOMGEN_UPSTREAMS"),
        ("integrations", "INTEGRATIONS_UPSTREAMS"),
    ]:
        service = services[name]
        # a scaled service may have neither a fixed name nor a published host port
        assert "container_name" not in service
        assert "ports" not in service
        # the gateway reaches the service by its compose DNS name (every replica's address)
        assert gateway_env[variable] == f"{name}:8000"
        assert service["command"][:2] == ["python", "-m"]  # the override's entrypoint execs it
    assert "127.0.0.1:8080:8080" in services["gateway"]["ports"]
    assert "127.0.0.1:8025:8025" in services["mailpit"]["ports"]
    assert services["commerce"]["environment"]["COMMERCE_PUBLIC_BASE_URL"] == (
        "http://127.0.0.1:8080"
    )
    assert "dev-keys:/keys" in services["dev-keys"]["volumes"]


def test_merged_compose_config_is_valid(tmp_path: Path) -> None:
    """``docker compose config`` (no engine needed) accepts the file plus the override."""
    if run_command(["docker", "compose", "version"], 30.0).returncode != 0:
        pytest.skip("the Docker Compose v2 plugin is not installed")
    stack = ComposeStack(tmp_path, 2, KEY)
    stack.prepare()
    done = run_command(stack.compose("config", "--format", "json"), 60.0)
    assert done.returncode == 0, done.stderr
    merged = json.loads(done.stdout)["services"]
    assert merged["commerce"]["environment"]["COMMERCE_OTEL_EXPORTER"] == "file"
    assert merged["commerce"]["command"][:2] == ["python", "-m"]
    assert merged["commerce"]["entrypoint"][-1] == "sh"


def test_missing_engine_is_reported() -> None:
    no_engine = Recorder(
        {
            "info": (1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."),
            "version": (1, "", "docker: unknown command: docker compose"),
        }
    )
    reason = compose_unavailable(no_engine, which=lambda _: "/usr/bin/docker")
    assert reason is not None
    assert reason.startswith("no Docker engine answers (`docker info` exited 1: Cannot connect")
    assert "Compose v2 plugin is missing" in reason
    assert compose_unavailable(Recorder(), which=lambda _: None) == (
        "the `docker` CLI is not on PATH"
    )
    assert compose_unavailable(Recorder(), which=lambda _: "/usr/bin/docker") is None


def test_failed_up_takes_the_project_down(tmp_path: Path) -> None:
    runner = Recorder({"up": (1, "", "service custom-gen is unhealthy")})
    with pytest.raises(ComposeError, match="service custom-gen is unhealthy"):
        ComposeStack(tmp_path, 1, KEY, run=runner).start()
    verbs = [call[len(base(tmp_path))] for call in runner.calls]
    assert verbs == ["down", "up", "logs", "down"]  # stale project, up, logs for the error, down


def test_mailpit_mailbox_returns_parsed_messages_oldest_first() -> None:
    raw = {
        "b": b"To: bob@example.com\r\nSubject: second\r\n\r\nhello bob\r\n",
        "a": b"To: ann@example.com\r\nSubject: first\r\n\r\nhello ann\r\n",
    }
    fetched: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/messages":
            messages: list[dict[str, Any]] = [
                {"ID": "b", "Created": "2025-01-01T00:00:02Z"},
                {"ID": "a", "Created": "2025-01-01T00:00:01Z"},
            ]
            start = int(request.url.params["start"])
            return httpx.Response(
                200, json={"messages": messages[start:], "messages_count": len(messages)}
            )
        mid = request.url.path.split("/")[-2]
        fetched.append(mid)
        return httpx.Response(200, content=raw[mid])

    box = MailpitMailbox("http://mailpit:8025", transport=httpx.MockTransport(handler))
    first = box.messages()
    assert [str(m["Subject"]) for m in first] == ["first", "second"]
    assert all(isinstance(m, EmailMessage) for m in first)
    assert box.messages()[1].get_content().strip() == "hello bob"
    assert sorted(fetched) == ["a", "b"]  # each raw message fetched once
    box.close()
