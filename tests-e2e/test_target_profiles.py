"""Offline checks of the compose target's profiles (``COURSEMESH_E2E_COMPOSE_PROFILE``): which
files it merges, in which order, and what ``check()`` then requires. No Docker engine needed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from targets import (
    COMPOSE_FILE,
    COMPOSE_PROFILES,
    ComposeError,
    ComposeStack,
    compose_profile,
    run_command,
)

KEY = {"COMMERCE_SANDBOX_WEBHOOK_KEY": "k-123"}


def test_the_profile_comes_from_the_environment_and_unknown_ones_are_refused() -> None:
    assert compose_profile({}) is None
    assert compose_profile({"COURSEMESH_E2E_COMPOSE_PROFILE": " "}) is None
    assert compose_profile({"COURSEMESH_E2E_COMPOSE_PROFILE": "nats-cluster"}) == "nats-cluster"
    with pytest.raises(ValueError, match="expected one of nats-cluster"):
        compose_profile({"COURSEMESH_E2E_COMPOSE_PROFILE": "kafka"})


def test_the_nats_cluster_file_is_merged_between_the_main_file_and_the_override(
    tmp_path: Path,
) -> None:
    stack = ComposeStack(tmp_path, 2, KEY, profile="nats-cluster")
    cluster_file = COMPOSE_PROFILES["nats-cluster"].file
    assert cluster_file.is_file()
    assert stack.up_argv()[:11] == [
        "docker", "compose", "-p", "coursemesh-e2e",
        "-f", str(COMPOSE_FILE), "-f", str(cluster_file), "-f", str(tmp_path / "compose.e2e.json"),
        "--env-file",
    ]  # fmt: skip
    plain = ComposeStack(tmp_path, 2, KEY).up_argv()
    assert plain.count("-f") == 2  # no profile: the main file and the override
    assert str(cluster_file) not in plain


class PsReply:
    """A fake ``Runner`` answering ``docker compose ps`` with the given running services."""

    def __init__(self, running: list[str]) -> None:
        self.rows = [{"Service": name, "State": "running", "Health": "healthy"} for name in running]

    def __call__(self, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        out = "\n".join(json.dumps(row) for row in self.rows) if "ps" in argv else ""
        return subprocess.CompletedProcess(list(argv), 0, out, "")


def test_check_requires_the_three_nats_nodes_with_the_profile(tmp_path: Path) -> None:
    services = ["catalog", "commerce", "learning", "custom-gen", "integrations", "gateway"]
    ComposeStack(tmp_path, 1, KEY, run=PsReply(services)).check()
    down = ComposeStack(tmp_path, 1, KEY, run=PsReply([*services, "nats"]), profile="nats-cluster")
    with pytest.raises(ComposeError, match=r"nats-2: 0/1 running; nats-3: 0/1 running"):
        down.check()
    nodes = ["nats", "nats-2", "nats-3"]
    ComposeStack(tmp_path, 1, KEY, run=PsReply(services + nodes), profile="nats-cluster").check()


def test_merged_config_with_the_profile_is_valid(tmp_path: Path) -> None:
    """``docker compose config`` (no engine needed) accepts the three files together."""
    if run_command(["docker", "compose", "version"], 30.0).returncode != 0:
        pytest.skip("the Docker Compose v2 plugin is not installed")
    stack = ComposeStack(tmp_path, 2, KEY, profile="nats-cluster")
    stack.prepare()
    done = run_command(stack.compose("config", "--format", "json"), 60.0)
    assert done.returncode == 0, done.stderr
    merged = json.loads(done.stdout)["services"]
    assert {"nats", "nats-2", "nats-3"} <= set(merged)
    assert merged["learning"]["environment"]["LEARNING_STREAM_REPLICAS"] == "3"
    assert merged["learning"]["environment"]["LEARNING_OTEL_EXPORTER"] == "file"
