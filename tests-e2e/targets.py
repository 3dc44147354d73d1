"""Where the e2e journeys run: the embedded stack (default) or the Docker Compose stack.

``COURSEMESH_E2E_TARGET=embedded|compose`` picks one (see docs/e2e.md). The journeys only use
the small surface described by :class:`E2ETarget`; ``coursemesh.devstack.stack.Stack`` has it
already (the embedded target is the ``make up`` code path itself) and :class:`ComposeStack`
implements it on top of ``docker compose``:

- the gateway as published by ``docker-compose.yml`` (``127.0.0.1:8080``);
- tokens minted with the compose stack's development identity (its ``dev-keys`` volume's
  private key, read once, plus the JWKS the gateway serves);
- mail from Mailpit's HTTP API instead of ``.eml`` files;
- S3 at the compose SeaweedFS, published on an ephemeral loopback port by a generated
  override file;
- spans written by the services' own JSON-lines exporter into ``<data>/telemetry`` (a bind
  mount, one file per container), the same format the embedded stack writes.

``COURSEMESH_E2E_COMPOSE_PROFILE=nats-cluster`` merges ``docker-compose.nats-cluster.yml``
over ``docker-compose.yml`` as well: a three-node NATS JetStream cluster, three copies of every
stream.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Protocol

import httpx

from coursemesh.devstack.infra import S3Config
from coursemesh.devstack.keys import DevIdentity
from coursemesh.devstack.stack import Stack
from coursemesh.devstack.testing import assert_pids_gone

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
TARGET_ENV = "COURSEMESH_E2E_TARGET"
TARGETS = ("embedded", "compose")
COMPOSE_PROJECT = "coursemesh-e2e"
PROFILE_ENV = "COURSEMESH_E2E_COMPOSE_PROFILE"


@dataclass(frozen=True)
class ComposeProfile:
    """A variant of the compose stack: a file merged over docker-compose.yml, and the services
    of it that must keep running besides the five services and the gateway."""

    file: Path
    infrastructure: tuple[str, ...]


#: ``COURSEMESH_E2E_COMPOSE_PROFILE`` names one (unset: docker-compose.yml alone).
COMPOSE_PROFILES = {
    "nats-cluster": ComposeProfile(
        REPO_ROOT / "docker-compose.nats-cluster.yml", ("nats", "nats-2", "nats-3")
    ),
}

# --- the interface the journeys use --------------------------------------------------------------


class TokenMinter(Protocol):
    def mint_token(self, sub: str, email: str | None = None, name: str | None = None) -> str: ...


class MailSource(Protocol):
    def messages(self) -> list[EmailMessage]:
        """Every message received so far, oldest first, parsed with ``email.policy.default``."""
        ...


class SmtpSink(Protocol):
    @property
    def mailbox(self) -> MailSource: ...


class S3Sink(Protocol):
    @property
    def config(self) -> S3Config: ...


class ServiceRef(Protocol):
    @property
    def name(self) -> str: ...


class ReplicaRef(Protocol):
    @property
    def spec(self) -> ServiceRef: ...

    @property
    def replica(self) -> Any: ...


class TargetConfig(Protocol):
    @property
    def replicas(self) -> int: ...


class E2ETarget(Protocol):
    """Exactly what ``tests-e2e/test_journeys.py`` reads from its ``stack`` fixture."""

    @property
    def gateway_url(self) -> str: ...

    @property
    def data_dir(self) -> Path:
        """``<data_dir>/telemetry/*.jsonl`` holds the exported spans (one JSON object a line)."""
        ...

    @property
    def config(self) -> TargetConfig: ...

    @property
    def replicas(self) -> Sequence[ReplicaRef]: ...

    @property
    def identity(self) -> TokenMinter: ...

    @property
    def smtp(self) -> SmtpSink | None: ...

    @property
    def s3(self) -> S3Sink | None: ...

    def service_env(self, spec: Any, replica: Any) -> Mapping[str, str]: ...

    def check(self) -> None:
        """Raise if a part of the stack died while the journeys ran."""
        ...

    def stop_service(self, name: str) -> None:
        """Stop every replica of one service."""
        ...

    def start_service(self, name: str) -> None:
        """Start them again; return once the gateway routes to the service."""
        ...


def _embedded_is_a_target(stack: Stack) -> E2ETarget:
    return stack  # mypy proves the embedded Stack has the interface


def target_name(environ: Mapping[str, str] = os.environ) -> str:
    name = environ.get(TARGET_ENV, "embedded").strip() or "embedded"
    if name not in TARGETS:
        raise ValueError(f"{TARGET_ENV}={name!r}: expected one of {', '.join(TARGETS)}")
    return name


def compose_profile(environ: Mapping[str, str] = os.environ) -> str | None:
    """The compose profile ``COURSEMESH_E2E_COMPOSE_PROFILE`` asks for (None: the plain file)."""
    name = environ.get(PROFILE_ENV, "").strip()
    if not name:
        return None
    if name not in COMPOSE_PROFILES:
        raise ValueError(f"{PROFILE_ENV}={name!r}: expected one of {', '.join(COMPOSE_PROFILES)}")
    return name


# --- embedded ------------------------------------------------------------------------------------


@contextlib.contextmanager
def run_embedded(
    data_dir: Path, *, gateway_port: int, replicas: int, extra_env: Mapping[str, str]
) -> Iterator[Stack]:
    """``Stack`` (the code path of ``make up``) on a fresh data dir, stopped child by child."""
    running = Stack(
        data_dir=data_dir,
        gateway_port=gateway_port,
        replicas=replicas,
        fresh=True,
        startup_timeout=180.0,
        extra_env=dict(extra_env),
    )
    running.start()
    pids = [child.pid for child in running.children() if child.pid is not None]
    try:
        yield running
        running.check()  # no child died while the journeys ran
    finally:
        running.stop()
        assert_pids_gone(pids)


# --- compose -------------------------------------------------------------------------------------

Runner = Callable[[Sequence[str], float], "subprocess.CompletedProcess[str]"]


def run_command(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (no shell), capturing text output; never raises on a non-zero exit."""
    try:
        return subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        return subprocess.CompletedProcess(list(argv), 127, "", str(exc))
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(
            list(argv), 124, "", f"timed out after {timeout}s: {exc}"
        )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "(no output)"


def compose_unavailable(
    run: Runner = run_command, which: Callable[[str], str | None] = shutil.which
) -> str | None:
    """Why the compose target cannot run here (``None`` when it can): no ``docker`` CLI, no
    Docker engine answering ``docker info``, or no Compose v2 plugin."""
    if which("docker") is None:
        return "the `docker` CLI is not on PATH"
    problems = []
    info = run(["docker", "info", "--format", "{{.ServerVersion}}"], 30.0)
    if info.returncode != 0:
        problems.append(
            "no Docker engine answers (`docker info` exited "
            f"{info.returncode}: {_first_line(info.stderr or info.stdout)})"
        )
    version = run(["docker", "compose", "version"], 30.0)
    if version.returncode != 0:
        problems.append(
            "the Docker Compose v2 plugin is missing (`docker compose version` exited "
            f"{version.returncode}: {_first_line(version.stderr or version.stdout)})"
        )
    return "; ".join(problems) or None


@dataclass(frozen=True)
class ComposeService:
    """A scaled service of docker-compose.yml (``name`` as in the compose file and URLs)."""

    name: str
    env_prefix: str


#: The five services, as named in docker-compose.yml (and in the journeys' ``spec.name``).
COMPOSE_SERVICES = (
    ComposeService("catalog", "CATALOG_"),
    ComposeService("commerce", "COMMERCE_"),
    ComposeService("learning", "LEARNING_"),
    ComposeService("custom-gen", "CUSTOMGEN_"),
    ComposeService("integrations", "INTEGRATIONS_"),
)


@dataclass(frozen=True)
class ComposeReplica:
    spec: ComposeService
    replica: int  # 1-based, as ``docker compose`` numbers containers


@dataclass(frozen=True)
class ComposeConfig:
    replicas: int


@dataclass(frozen=True)
class _S3:
    config: S3Config


@dataclass(frozen=True)
class _Smtp:
    mailbox: MailpitMailbox


class MailpitMailbox:
    """Mailpit's HTTP API (``/api/v1/messages``, ``/api/v1/message/<id>/raw``) seen as the
    embedded stack's ``Mailbox``: every message, oldest first, as an ``EmailMessage``."""

    def __init__(self, base_url: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=10.0, transport=transport)
        self._parsed: dict[str, EmailMessage] = {}

    def messages(self) -> list[EmailMessage]:
        summaries: list[dict[str, Any]] = []
        start, page = 0, 200
        while True:
            response = self._client.get("/api/v1/messages", params={"start": start, "limit": page})
            response.raise_for_status()
            body = response.json()
            batch = body.get("messages") or []
            summaries.extend(batch)
            start += len(batch)
            if not batch or start >= int(body.get("messages_count", body.get("total", 0))):
                break
        summaries.sort(key=lambda m: (str(m.get("Created", "")), str(m["ID"])))
        found = []
        for summary in summaries:
            mid = str(summary["ID"])
            if mid not in self._parsed:
                raw = self._client.get(f"/api/v1/message/{mid}/raw")
                raw.raise_for_status()
                parsed = BytesParser(policy=policy.default).parsebytes(raw.content)
                assert isinstance(parsed, EmailMessage)
                self._parsed[mid] = parsed
            found.append(self._parsed[mid])
        return found

    def close(self) -> None:
        self._client.close()


class ComposeError(RuntimeError):
    """The compose stack could not start, or a service is not running."""


@dataclass
class ComposeStack:
    """docker-compose.yml as project ``coursemesh-e2e``, with a generated override file.

    The override (written to ``<data_dir>/compose.e2e.json``; JSON is YAML) only adds what a
    test needs and the compose file does not give a client on the host: the sandbox webhook key
    (``extra_env``), span files on a bind mount, and S3 on a loopback port.
    """

    data_dir: Path
    replica_count: int = 1
    extra_env: Mapping[str, str] = field(default_factory=dict)
    project: str = COMPOSE_PROJECT
    compose_file: Path = COMPOSE_FILE
    run: Runner = run_command
    profile: str | None = None  # a key of COMPOSE_PROFILES
    up_timeout: float = 1800.0  # the first run builds four images and pulls seven
    ready_timeout: float = 180.0
    _gateway_url: str | None = field(default=None, init=False)
    _identity: DevIdentity | None = field(default=None, init=False)
    _smtp: _Smtp | None = field(default=None, init=False)
    _s3: _S3 | None = field(default=None, init=False)

    # ----------------------------------------------------------------- commands

    @property
    def override_file(self) -> Path:
        return self.data_dir / "compose.e2e.json"

    @property
    def env_file(self) -> Path:
        """Compose's variables (``--env-file``): the file requires the sandbox webhook key when
        it is read, before the override is merged."""
        return self.data_dir / "compose.e2e.env"

    @property
    def telemetry_dir(self) -> Path:
        return self.data_dir / "telemetry"

    @property
    def compose_files(self) -> list[Path]:
        """docker-compose.yml, the profile's file if any, then the generated override."""
        profile = [COMPOSE_PROFILES[self.profile].file] if self.profile else []
        return [self.compose_file, *profile, self.override_file]

    def compose(self, *args: str) -> list[str]:
        """``docker compose -p <project> -f docker-compose.yml [-f <profile's file>]
        -f <override> --env-file <env> <args>``."""
        files = [arg for path in self.compose_files for arg in ("-f", str(path))]
        return [
            "docker", "compose", "-p", self.project, *files,
            "--env-file", str(self.env_file), *args,
        ]  # fmt: skip

    def up_argv(self) -> list[str]:
        scale = [
            arg
            for service in COMPOSE_SERVICES
            for arg in ("--scale", f"{service.name}={self.replica_count}")
        ]
        return self.compose("up", "-d", "--build", "--wait", *scale)

    def down_argv(self) -> list[str]:
        return self.compose("down", "-v", "--remove-orphans")

    def private_key_argv(self) -> list[str]:
        """Print the development private key from the ``dev-keys`` volume (``dev-keys`` runs as
        root, the key is mode 0600)."""
        return self.compose(
            "run", "--rm", "-T", "--no-deps", "--entrypoint", "cat", "dev-keys", "/keys/private.pem"
        )

    def override(self) -> dict[str, Any]:
        """The override document merged over docker-compose.yml."""
        services: dict[str, Any] = {}
        for service in COMPOSE_SERVICES:
            prefix = service.env_prefix
            otel_file = f"/telemetry/{service.name}-$${{HOSTNAME}}.jsonl"  # $$: compose escape
            services[service.name] = {
                "environment": {
                    f"{prefix}OTEL_EXPORTER": "file",
                    **{k: v for k, v in self.extra_env.items() if k.startswith(prefix)},
                },
                # One span file per container: the replicas of a service share the image and
                # the environment, so the file name is completed from the container hostname
                # in a shell before exec-ing the service's own compose `command`.
                "entrypoint": [
                    "sh",
                    "-c",
                    f'export {prefix}OTEL_FILE="{otel_file}"; exec "$$@"',
                    "sh",
                ],
                "volumes": [f"{self.telemetry_dir}:/telemetry"],
            }
        services["s3"] = {"ports": ["127.0.0.1::8333"]}
        return {"services": services}

    # ----------------------------------------------------------------- lifecycle

    def _call(self, argv: Sequence[str], timeout: float = 120.0) -> str:
        done = self.run(argv, timeout)
        if done.returncode != 0:
            raise ComposeError(
                f"`{' '.join(argv)}` exited {done.returncode}:\n"
                f"{(done.stderr or done.stdout)[-4000:]}"
            )
        return done.stdout

    def prepare(self) -> None:
        """The data dir, the span directory (writable by the services' uid 10001) and the
        override file."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.telemetry_dir.mkdir(exist_ok=True)
        self.telemetry_dir.chmod(0o777)
        (self.data_dir / "keys").mkdir(exist_ok=True)
        self.override_file.write_text(json.dumps(self.override(), indent=2))
        self.env_file.touch(mode=0o600)
        self.env_file.chmod(0o600)  # the key file of an earlier run may be wider
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in self.extra_env.items()))

    def start(self) -> ComposeStack:
        self.prepare()
        try:
            self._call(self.down_argv())  # leftovers of an interrupted run
            self._call(self.up_argv(), self.up_timeout)
            self._gateway_url = "http://" + self._published("gateway", 8080)
            self._wait_through_gateway()
            self._load_identity()
            self._smtp = _Smtp(MailpitMailbox("http://" + self._published("mailpit", 8025)))
            s3 = S3Config(
                "http://" + self._published("s3", 8333), "coursemesh-dev", "coursemesh-dev-secret"
            )
            self._s3 = _S3(s3)
        except BaseException as exc:
            logs = self.run(self.compose("logs", "--no-color", "--tail", "30"), 60.0)
            self.stop()
            if isinstance(exc, ComposeError):
                raise ComposeError(f"{exc}\n--- docker compose logs ---\n{logs.stdout}") from exc
            raise
        return self

    def _published(self, service: str, port: int) -> str:
        """``host:port`` a container port is published on (loopback for 0.0.0.0)."""
        out = _last_line(self._call(self.compose("port", service, str(port))))
        host, _, published = out.rpartition(":")
        if host in ("0.0.0.0", "", "[::]", "::"):
            host = "127.0.0.1"
        return f"{host}:{published}"

    def _wait_through_gateway(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        paths = [f"/health/{service.name}" for service in COMPOSE_SERVICES]
        with httpx.Client(base_url=self.gateway_url, timeout=5.0) as client:
            while True:
                failing = []
                for path in paths:
                    try:
                        status = str(client.get(path).status_code)
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    if status != "200":
                        failing.append(f"{path} -> {status}")
                if not failing:
                    return
                if time.monotonic() >= deadline:
                    raise ComposeError(f"not ready through the gateway: {', '.join(failing)}")
                time.sleep(1.0)

    def _load_identity(self) -> None:
        """The compose issuer's key pair, copied once into ``<data_dir>/keys`` (the layout of
        ``DevIdentity``): the private key from the volume, the JWKS as the gateway serves it."""
        keys = self.data_dir / "keys"
        pem = self._call(self.private_key_argv())
        private = keys / "private.pem"
        private.write_text(pem)
        private.chmod(0o600)
        jwks = httpx.get(f"{self.gateway_url}/.well-known/jwks.json", timeout=10.0)
        jwks.raise_for_status()
        (keys / "jwks.json").write_text(jwks.text)
        self._identity = DevIdentity(keys)

    def stop_service(self, name: str) -> None:
        self._call(self.compose("stop", name))

    def start_service(self, name: str) -> None:
        self._call(self.compose("start", name))
        self._wait_through_gateway()

    def check(self) -> None:
        """Every service has ``replica_count`` running containers, none unhealthy; the gateway
        and the profile's infrastructure (the three NATS nodes) one each."""
        out = self._call(self.compose("ps", "--format", "json"))
        rows = _json_rows(out)
        problems = []
        scaled = [s.name for s in COMPOSE_SERVICES]
        single = [
            "gateway",
            *(COMPOSE_PROFILES[self.profile].infrastructure if self.profile else ()),
        ]
        for name in scaled + single:
            mine = [r for r in rows if r.get("Service") == name]
            wanted = self.replica_count if name in scaled else 1
            running = [
                r for r in mine if r.get("State") == "running" and r.get("Health") != "unhealthy"
            ]
            if len(running) != wanted:
                problems.append(f"{name}: {len(running)}/{wanted} running")
        if problems:
            raise ComposeError("compose services not running: " + "; ".join(problems))

    def stop(self) -> None:
        """``docker compose down -v``: containers, network and volumes of the project."""
        if self._smtp is not None:
            self._smtp.mailbox.close()
        done = self.run(self.down_argv(), 300.0)
        if done.returncode != 0:
            raise ComposeError(f"`docker compose down` failed: {_last_line(done.stderr)}")

    # ----------------------------------------------------------------- E2ETarget

    @property
    def gateway_url(self) -> str:
        if self._gateway_url is None:
            raise ComposeError("the compose stack is not started")
        return self._gateway_url

    @property
    def config(self) -> ComposeConfig:
        return ComposeConfig(self.replica_count)

    @property
    def replicas(self) -> list[ComposeReplica]:
        return [
            ComposeReplica(service, index)
            for service in COMPOSE_SERVICES
            for index in range(1, self.replica_count + 1)
        ]

    @property
    def identity(self) -> DevIdentity:
        if self._identity is None:
            raise ComposeError("the compose stack is not started")
        return self._identity

    @property
    def smtp(self) -> _Smtp | None:
        return self._smtp

    @property
    def s3(self) -> _S3 | None:
        return self._s3

    def service_env(self, spec: Any, replica: Any) -> dict[str, str]:
        """What this target adds to the service's compose environment (the sandbox webhook
        key for commerce)."""
        environment: dict[str, str] = self.override()["services"][spec.name]["environment"]
        return dict(environment)


def _compose_is_a_target(stack: ComposeStack) -> E2ETarget:
    return stack  # mypy proves the compose target has the interface


def _json_rows(out: str) -> list[dict[str, Any]]:
    """``docker compose ps --format json``: a JSON array (older Compose) or one object a line."""
    text = out.strip()
    if not text:
        return []
    if text.startswith("["):
        rows: list[dict[str, Any]] = json.loads(text)
        return rows
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@contextlib.contextmanager
def run_compose(
    data_dir: Path,
    *,
    replicas: int,
    extra_env: Mapping[str, str],
    run: Runner = run_command,
    profile: str | None = None,
) -> Iterator[ComposeStack]:
    """The compose stack (with ``profile``, default: ``COURSEMESH_E2E_COMPOSE_PROFILE``),
    checked after the journeys and always taken down (``down -v``)."""
    chosen = profile if profile is not None else compose_profile()
    stack = ComposeStack(data_dir, replicas, extra_env, run=run, profile=chosen).start()
    try:
        yield stack
        stack.check()
    finally:
        stack.stop()
