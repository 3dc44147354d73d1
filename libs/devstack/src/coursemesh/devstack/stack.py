"""The whole development stack: infrastructure, migrations, services and the gateway.

``Stack(...).start()`` is what ``coursemesh up`` (and ``make up``) runs; e2e tests use the same
code path. Layout of the data dir (default ``.data/``)::

    .coursemesh-devstack   marker: this directory is ours (``--fresh`` refuses others)
    stack.json             URLs, ports and PIDs of the running (or last) stack
    keys/                  development RSA key (private.pem) and jwks.json
    postgres/ nats/ s3/    infrastructure data (survives restarts)
    mail/                  every email sent, one .eml file each
    telemetry/             OpenTelemetry files, <service>-<replica>.jsonl
    logs/                  one log per process: postgres.log, catalog-1.log, gateway.log ...
    gateway/               Caddy's own state
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import urlsplit

from coursemesh.devstack.infra import (
    CaddyGateway,
    EmbeddedNats,
    EmbeddedPostgres,
    EmbeddedS3,
    EmbeddedSmtp,
    Launcher,
    S3Config,
)
from coursemesh.devstack.infra.gateway import local_host
from coursemesh.devstack.infra.nats import http_ok
from coursemesh.devstack.infra.s3 import ROLES as S3_ROLES
from coursemesh.devstack.keys import DevIdentity, reminder_key, sandbox_webhook_key
from coursemesh.devstack.ports import (
    GRPC_OFFSET,
    claim_port,
    describe_holders,
    hold_port,
    is_port_free,
    listens,
    release_ports,
    unhold_ports,
)
from coursemesh.devstack.process import (
    DevstackError,
    ManagedProcess,
    pid_alive,
    wait_until,
)
from coursemesh.devstack.services import (
    S3_BUCKETS,
    SERVICES,
    MigrateCommand,
    Replica,
    ServiceCommand,
    ServiceSpec,
    StackEndpoints,
    migrate_command,
    uvicorn_command,
)
from coursemesh.devstack.supervisor import (
    CrashLoopError,
    RestartPolicy,
    Supervisor,
    Unit,
    describe_exit,
)

MARKER = ".coursemesh-devstack"
DEFAULT_GATEWAY_PORT = 8080
DEFAULT_GATEWAY_HOST = "127.0.0.1"
DATABASE_NAME = "coursemesh"

#: ``--external`` mode: where to find infrastructure the stack does not start itself.
EXTERNAL_ENV = (
    "COURSEMESH_DATABASE_URL",
    "COURSEMESH_NATS_URL",
    "COURSEMESH_S3_ENDPOINT",
    "COURSEMESH_S3_ACCESS_KEY",
    "COURSEMESH_S3_SECRET_KEY",
    "COURSEMESH_SMTP_HOST",
    "COURSEMESH_SMTP_PORT",
)


class StackError(DevstackError):
    """The stack could not start, or a child exited while it ran."""


class Progress(Protocol):
    """Receives start-up progress (the CLI renders it with rich)."""

    def step(self, message: str) -> None:
        """A step begins."""

    def done(self, message: str) -> None:
        """A step finished."""


class _SilentProgress:
    def step(self, message: str) -> None:
        pass

    def done(self, message: str) -> None:
        pass


def _stderr_log(message: str) -> None:
    print(f"coursemesh: {message}", file=sys.stderr, flush=True)


@dataclass
class ReplicaProcess:
    """One running service replica."""

    spec: ServiceSpec
    replica: Replica
    port: int
    process: ManagedProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        return self.replica.instance_id

    @property
    def claimed_ports(self) -> list[int]:
        return [self.port]

    def owns_port(self) -> bool:
        """The replica's own process listens on its port (not another program)."""
        return self.process.running and listens(self.process.pid, self.port)

    def ready(self) -> bool:
        """Live, and answered by this replica's process. Never raises."""
        try:
            return self.owns_port() and http_ok(f"{self.url}/health/live")
        except Exception:
            return False

    def respawn(self) -> ManagedProcess:
        """A new process for this replica: same command, port, environment and log."""
        old = self.process
        with contextlib.suppress(Exception):
            old.wait_stopped(0)  # reaps it and closes its log file
        self.process = ManagedProcess(old.name, old.argv, log_path=old.log_path, env=old.env)
        return self.process.start()


@dataclass
class StackConfig:
    """How to run the stack. Every field has a ``make up`` default."""

    data_dir: Path = Path(".data")
    gateway_port: int | None = None  # None: preferred_gateway_port when free, else any free
    preferred_gateway_port: int = DEFAULT_GATEWAY_PORT
    # The gateway's bind address (GATEWAY_BIND): 0.0.0.0 serves other machines of the network.
    gateway_host: str = DEFAULT_GATEWAY_HOST
    # The gateway's address as clients see it (e.g. http://192.168.1.20:8080): every service's
    # PUBLIC_BASE_URL, so payment pages, return pages and audio links point at it.
    # None: the gateway's own URL.
    public_url: str | None = None
    replicas: int = 1
    external: bool = False
    fresh: bool = False
    services: Sequence[ServiceSpec] = SERVICES
    service_command: ServiceCommand = uvicorn_command
    migrate_command: MigrateCommand | None = migrate_command  # None: skip migrations
    extra_env: Mapping[str, str] = field(default_factory=dict)  # added to every service
    environ: Mapping[str, str] | None = None  # where --external reads from (os.environ)
    log_level: str = "INFO"
    # Share of requests traced (1.0: every request, the right default on a developer's machine).
    trace_sample_ratio: float = 1.0
    startup_timeout: float = 90.0
    migration_timeout: float = 120.0
    caddyfile: Path | None = None
    # How crashed children are restarted while ``wait()`` supervises (max_restarts=0: never).
    restart: RestartPolicy = field(default_factory=RestartPolicy)


def external_endpoints(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``COURSEMESH_*`` variables of ``--external`` mode; raise naming every missing one."""
    missing = [name for name in EXTERNAL_ENV if not environ.get(name)]
    if missing:
        raise StackError("--external needs these environment variables: " + ", ".join(missing))
    values = {name: environ[name] for name in EXTERNAL_ENV}
    values["COURSEMESH_S3_REGION"] = environ.get("COURSEMESH_S3_REGION", "us-east-1")
    return values


def public_url(url: str | None) -> str | None:
    """A ``--public-url`` checked and normalised (no trailing slash); None stays None."""
    if url is None or not url.strip():
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StackError(
            f"--public-url must be an http(s) URL such as http://host:8080, not {url!r}"
        )
    if parts.query or parts.fragment:
        raise StackError(f"--public-url must have no query or fragment: {url!r}")
    return url.strip().rstrip("/")


def asyncpg_url(url: str) -> str:
    """Normalise a PostgreSQL URL to the SQLAlchemy asyncpg dialect."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise StackError(f"not a PostgreSQL URL: {url!r}")


def read_stack_json(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / "stack.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


class Stack:
    """The development stack as child processes of this one.

    ``start()`` brings everything up and returns once every service answers
    ``/health/<service>`` through the gateway (every readiness check also verifies that the
    answering socket belongs to the child we started); ``wait()`` supervises: a child that
    exits is started again (same ports, same data) after an exponential backoff, and
    :class:`StackError` (with its last log lines) is raised only when one crash-loops (see
    :class:`RestartPolicy`); ``stop()`` stops every child in reverse order, each by PID,
    waiting for each. Usable as a context manager.

    ``log(message)`` receives the supervisor's lines (restarts, port choices); they are also
    appended to ``logs/supervisor.log``. By default they go to stderr.
    """

    def __init__(
        self,
        config: StackConfig | None = None,
        *,
        progress: Progress | None = None,
        log: Callable[[str], None] | None = None,
        **overrides: Any,
    ) -> None:
        self.config = config or StackConfig()
        for key, value in overrides.items():
            if not hasattr(self.config, key):
                raise TypeError(f"unknown Stack option {key!r}")
            setattr(self.config, key, value)
        self.config.data_dir = Path(self.config.data_dir).resolve()
        if self.config.replicas < 1:
            raise ValueError("replicas must be >= 1")
        self.config.public_url = public_url(self.config.public_url)
        self.progress: Progress = progress or _SilentProgress()
        self.data_dir = self.config.data_dir
        self.identity = DevIdentity.for_data_dir(self.data_dir)
        self.postgres: EmbeddedPostgres | None = None
        self.nats: EmbeddedNats | None = None
        self.s3: EmbeddedS3 | None = None
        self.smtp: EmbeddedSmtp | None = None
        self.gateway: CaddyGateway | None = None
        self.replicas: list[ReplicaProcess] = []
        self.endpoints: StackEndpoints | None = None
        self.startup_seconds: float | None = None
        self._previous: dict[str, Any] = {}
        self._claimed: list[int] = []
        self._migrations: list[ManagedProcess] = []
        self._log = log or _stderr_log
        self._started_at: str | None = None
        self.supervisor = Supervisor(
            self.config.restart, log=self._event, changed=self._children_changed
        )

    # ----------------------------------------------------------------- paths

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def stack_json(self) -> Path:
        return self.data_dir / "stack.json"

    @property
    def gateway_url(self) -> str:
        if self.gateway is None:
            raise StackError("the stack is not started")
        return self.gateway.url

    @property
    def infrastructure(self) -> list[Launcher]:
        return [x for x in (self.postgres, self.nats, self.s3, self.smtp) if x is not None]

    # ----------------------------------------------------------------- start

    def start(self) -> Self:
        began = time.monotonic()
        try:
            self._prepare_data_dir()
            self.identity.ensure()
            gateway_port = self._gateway_port()
            local = local_host(self.config.gateway_host)
            self.endpoints = self._start_infrastructure(f"http://{local}:{gateway_port}")
            self._run_migrations(self.endpoints)
            self._start_services(self.endpoints)
            self._start_gateway(gateway_port)
            self._wait_through_gateway()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        self._started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        units: list[Unit] = [*self.infrastructure, *self.replicas]
        if self.gateway is not None:
            units.append(self.gateway)
        for unit in units:
            self.supervisor.add(unit)
        self._write_stack_json("running")
        return self

    def _prepare_data_dir(self) -> None:
        data = self.data_dir
        previous = read_stack_json(data) or {}
        supervisor = previous.get("supervisor_pid")
        if (
            previous.get("state") == "running"
            and isinstance(supervisor, int)
            and supervisor != os.getpid()
            and pid_alive(supervisor)
        ):
            raise StackError(f"a stack (PID {supervisor}) already runs on {data}")
        if self.config.fresh and data.exists():
            self._wipe(data)
            previous = {}
        data.mkdir(parents=True, exist_ok=True)
        (data / MARKER).touch()
        self._previous = previous.get("ports", {})
        for sub in ("logs", "mail", "telemetry"):
            (data / sub).mkdir(exist_ok=True)

    def _wipe(self, data: Path) -> None:
        cwd = Path.cwd().resolve()
        if data in (Path("/"), Path.home().resolve()) or data == cwd or data in cwd.parents:
            raise StackError(f"refusing to wipe {data}")
        if any(data.iterdir()) and not (data / MARKER).exists():
            raise StackError(f"refusing to wipe {data}: it has no {MARKER} marker")
        self.progress.step(f"wiping {data}")
        shutil.rmtree(data)
        self.progress.done(f"wiped {data}")

    def _claim(self, preferred: Any, partner_offset: int | None = None) -> int:
        """``preferred`` (the port of the previous run) when free, else a free port; held
        (bound by us, so no other program can take it) until its child is launched."""
        port = claim_port(
            preferred if isinstance(preferred, int) else None, partner_offset=partner_offset
        )
        ports = [port] if partner_offset is None else [port, port + partner_offset]
        for claimed in ports:
            hold_port(claimed)
        self._claimed.extend(ports)
        return port

    def _take(self, port: int) -> bool:
        """Claim exactly ``port`` if nobody listens on it (checked by binding it, and held from
        now on); False when it is taken."""
        host = self.config.gateway_host
        if not is_port_free(port, host):
            return False
        # Bindable: hold it. (Holding fails only while a connection of a previous run lingers
        # in TIME_WAIT; a server can still bind then, so the port is usable all the same.)
        hold_port(port, host)
        self._claimed.append(port)
        return True

    def _gateway_port(self) -> int:
        wanted = self.config.gateway_port
        if wanted:
            if not self._take(wanted):
                raise StackError(
                    f"gateway port {wanted} is already in use{describe_holders(wanted)}: "
                    "stop that process or choose another port"
                )
            return wanted
        preferred = self.config.preferred_gateway_port
        if self._take(preferred):
            return preferred
        port = self._claim(self._previous.get("gateway"))
        self._event(
            f"port {preferred} is already in use{describe_holders(preferred)}: "
            f"the gateway listens on port {port} instead"
        )
        return port

    def _start_infrastructure(self, gateway_url: str) -> StackEndpoints:
        telemetry = self.data_dir / "telemetry"
        if self.config.external:
            self.progress.step("using external infrastructure")
            env = external_endpoints(self.config.environ or os.environ)
            s3 = S3Config(
                env["COURSEMESH_S3_ENDPOINT"],
                env["COURSEMESH_S3_ACCESS_KEY"],
                env["COURSEMESH_S3_SECRET_KEY"],
                env["COURSEMESH_S3_REGION"],
            )
            self._ensure_buckets(s3)
            self.progress.done("external infrastructure configured")
            return StackEndpoints(
                database_url=asyncpg_url(env["COURSEMESH_DATABASE_URL"]),
                nats_url=env["COURSEMESH_NATS_URL"],
                gateway_url=gateway_url,
                s3_endpoint=s3.endpoint,
                s3_access_key=s3.access_key,
                s3_secret_key=s3.secret_key,
                s3_region=s3.region,
                smtp_host=env["COURSEMESH_SMTP_HOST"],
                smtp_port=int(env["COURSEMESH_SMTP_PORT"]),
                telemetry_dir=telemetry,
                sandbox_webhook_key=sandbox_webhook_key(self.data_dir),
                reminder_key=reminder_key(self.data_dir),
                log_level=self.config.log_level,
                trace_sample_ratio=self.config.trace_sample_ratio,
                public_url=self.config.public_url,
            )
        prev = self._previous
        prev_s3: dict[str, Any] = prev.get("s3") or {}
        logs = self.logs_dir
        self.postgres = EmbeddedPostgres(
            self.data_dir / "postgres",
            port=self._claim(prev.get("postgres")),
            log_path=logs / "postgres.log",
            durable=True,
        )
        self.nats = EmbeddedNats(
            self.data_dir / "nats",
            port=self._claim(prev.get("nats")),
            monitor_port=self._claim(prev.get("nats_monitor")),
            log_path=logs / "nats.log",
        )
        self.s3 = EmbeddedS3(
            self.data_dir / "s3",
            ports={role: self._claim(prev_s3.get(role), GRPC_OFFSET) for role in S3_ROLES},
            log_path=logs / "s3.log",
        )
        self.smtp = EmbeddedSmtp(
            self.mail_dir, port=self._claim(prev.get("smtp")), log_path=logs / "smtp.log"
        )
        self.progress.step("starting PostgreSQL, NATS, S3 and SMTP")
        for launcher in self.infrastructure:
            launcher.launch()
        for launcher in self.infrastructure:
            t = time.monotonic()
            launcher.wait_ready(self.config.startup_timeout)
            self.progress.done(
                f"{launcher.name} ready on port {getattr(launcher, 'port', '?')}"
                f" ({time.monotonic() - t:.1f}s)"
            )
        database_url = self.postgres.create_database(DATABASE_NAME)
        self._ensure_buckets(self.s3.config)
        return StackEndpoints(
            database_url=database_url,
            nats_url=self.nats.url,
            gateway_url=gateway_url,
            s3_endpoint=self.s3.endpoint,
            s3_access_key=self.s3.access_key,
            s3_secret_key=self.s3.secret_key,
            s3_region=self.s3.region,
            smtp_host=self.smtp.host,
            smtp_port=self.smtp.port,
            telemetry_dir=telemetry,
            sandbox_webhook_key=sandbox_webhook_key(self.data_dir),
            reminder_key=reminder_key(self.data_dir),
            log_level=self.config.log_level,
            trace_sample_ratio=self.config.trace_sample_ratio,
            public_url=self.config.public_url,
        )

    def _ensure_buckets(self, s3: S3Config) -> None:
        for bucket in S3_BUCKETS:
            try:
                s3.ensure_bucket(bucket)
            except Exception as exc:
                msg = f"cannot create bucket {bucket!r} at {s3.endpoint}: {exc}"
                raise StackError(msg) from exc

    def service_env(self, spec: ServiceSpec, replica: Replica) -> dict[str, str]:
        """The full environment of one replica (or of a migration, replica 1)."""
        if self.endpoints is None:
            raise StackError("infrastructure is not started")
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            **spec.environment(self.endpoints, replica),
            **self.config.extra_env,  # an explicit value wins (e.g. a test's sandbox key)
        }

    def _run_migrations(self, endpoints: StackEndpoints) -> None:
        """Every service's migrations, concurrently (each owns its schema and takes its own
        advisory lock); the first failure stops the start with that log's last lines."""
        command = self.config.migrate_command
        if command is None:
            return
        names = ", ".join(spec.name for spec in self.config.services)
        self.progress.step(f"migrating {names}")
        began = time.monotonic()
        running = [
            ManagedProcess(
                f"migrate-{spec.name}",
                command(spec),
                log_path=self.logs_dir / f"migrate-{spec.name}.log",
                env=self.service_env(spec, Replica(spec.name, 1)),
            ).start()
            for spec in self.config.services
        ]
        self._migrations = running
        deadline = began + self.config.migration_timeout
        try:
            for migration in running:
                code = migration.wait_stopped(max(0.0, deadline - time.monotonic()))
                if code != 0:
                    reason = "timed out" if code and code < 0 else f"failed (exit {code})"
                    raise StackError(
                        f"{migration.name} {reason}\n"
                        f"--- last lines of {migration.log_path} ---\n{migration.tail()}"
                    )
        finally:
            for migration in running:
                migration.stop(timeout=5)
            self._migrations = []
        self.progress.done(f"migrated {names} ({time.monotonic() - began:.1f}s)")

    def _start_services(self, endpoints: StackEndpoints) -> None:
        self.progress.step(
            f"starting {len(self.config.services)} services x {self.config.replicas} replicas"
        )
        t = time.monotonic()
        previous = self._previous.get("services", {})
        for spec in self.config.services:
            for index in range(1, self.config.replicas + 1):
                replica = Replica(spec.name, index)
                port = self._claim(previous.get(replica.instance_id))
                process = ManagedProcess(
                    replica.instance_id,
                    self.config.service_command(spec, port),
                    log_path=self.logs_dir / f"{replica.instance_id}.log",
                    env=self.service_env(spec, replica),
                )
                self.replicas.append(ReplicaProcess(spec, replica, port, process))
                unhold_ports([port])
                process.start()
        for rp in self.replicas:
            live = f"{rp.url}/health/live"

            def _live(url: str = live, rp: ReplicaProcess = rp) -> bool:
                self._check_children()
                return rp.owns_port() and http_ok(url)  # answered by our replica, nobody else

            try:
                wait_until(
                    _live,
                    timeout=self.config.startup_timeout,
                    what=f"{rp.replica.instance_id} at {live}",
                    process=rp.process,
                    interval=0.1,
                )
            except DevstackError as exc:
                raise StackError(f"{exc}{self._foreign(rp.port, rp.process)}") from exc
        self.progress.done(f"services live ({time.monotonic() - t:.1f}s)")

    def _start_gateway(self, port: int) -> None:
        self.progress.step("starting the gateway")
        upstreams: dict[str, list[str]] = {}
        for rp in self.replicas:
            upstreams.setdefault(rp.spec.name, []).append(rp.address)
        self.gateway = CaddyGateway(
            upstreams,
            port=port,
            jwks_dir=self.identity.keys_dir,
            bind=self.config.gateway_host,
            caddyfile=self.config.caddyfile,
            state_dir=self.data_dir / "gateway",
            log_path=self.logs_dir / "gateway.log",
        )
        self.gateway.launch()
        try:
            self.gateway.wait_ready(self.config.startup_timeout)
        except DevstackError as exc:
            raise StackError(f"the gateway could not start on port {port}: {exc}") from exc
        self.progress.done(f"gateway on {self.gateway.url}")

    def _wait_through_gateway(self) -> None:
        self.progress.step("waiting for /health/<service> through the gateway")
        t = time.monotonic()
        gateway = self.gateway
        assert gateway is not None
        for spec in self.config.services:
            url = f"{self.gateway_url}/health/{spec.name}"

            def _ready(url: str = url) -> bool:
                self._check_children()
                # through our own gateway: its process holds the port we ask
                return gateway.owns_ports() and http_ok(url)

            try:
                wait_until(_ready, timeout=self.config.startup_timeout, what=url, interval=0.1)
            except DevstackError as exc:
                self._check_children()
                raise StackError(
                    f"{exc}\n{self._tails(r for r in self.replicas if r.spec == spec)}"
                ) from exc
        self.progress.done(f"all services ready ({time.monotonic() - t:.1f}s)")

    # ----------------------------------------------------------------- run / stop

    def stop_service(self, name: str) -> None:
        """Stop every replica of service ``name``, by PID (as an operator's stop would).
        Stopped on purpose: the supervisor leaves them down until :meth:`start_service`."""
        replicas = self._replicas_of(name)
        self.supervisor.hold(rp.name for rp in replicas)
        for rp in replicas:
            rp.process.stop()

    def start_service(self, name: str) -> None:
        """Start the stopped replicas of ``name`` again, on their ports, and wait until the
        gateway routes to them."""
        for rp in self._replicas_of(name):
            with self.supervisor.lock:
                old = rp.process
                rp.process = ManagedProcess(old.name, old.argv, log_path=old.log_path, env=old.env)
                rp.process.start()
            live = f"{rp.url}/health/live"

            def _live(url: str = live, rp: ReplicaProcess = rp) -> bool:
                return rp.owns_port() and http_ok(url)

            wait_until(
                _live,
                timeout=self.config.startup_timeout,
                what=f"{rp.replica.instance_id} live again",
                process=rp.process,
                interval=0.1,
            )
            self.supervisor.release([rp.name])  # supervised again from now on
            self._children_changed()
        wait_until(
            lambda: http_ok(f"{self.gateway_url}/health/{name}"),
            timeout=self.config.startup_timeout,
            what=f"{name} ready through the gateway",
            interval=0.1,
        )

    def _replicas_of(self, name: str) -> list[ReplicaProcess]:
        found = [rp for rp in self.replicas if rp.spec.name == name]
        if not found:
            raise StackError(f"no service {name!r} in this stack")
        return found

    def children(self) -> list[ManagedProcess]:
        """Every child process, in start order."""
        processes = [x.process for x in self.infrastructure if x.process is not None]
        processes += [rp.process for rp in self.replicas]
        if self.gateway is not None and self.gateway.process is not None:
            processes.append(self.gateway.process)
        return processes

    def _check_children(self) -> None:
        for child in self.children():
            if self.supervisor.is_held(child.name):
                continue  # stopped on purpose (stop_service)
            if child.pid is not None and not child.running:
                raise StackError(
                    f"{child.name} (PID {child.pid}) {describe_exit(child.returncode)}\n"
                    f"--- last lines of {child.log_path} ---\n{child.tail()}"
                )

    def check(self) -> None:
        """Raise :class:`StackError` (with its last log lines) if a child is not running
        (except replicas stopped on purpose by :meth:`stop_service`)."""
        self._check_children()

    def heal(self) -> None:
        """One supervision round: notice exited children, restart those whose backoff has
        passed, log the ones ready again; :class:`StackError` when one crash-loops."""
        try:
            self.supervisor.poll()
        except CrashLoopError as exc:
            raise StackError(str(exc)) from exc

    def wait(self, *, poll_interval: float = 0.1, until: Callable[[], bool] | None = None) -> None:
        """Supervise (:meth:`heal`) until ``until()`` is true, forever without it. Raises
        :class:`StackError` (naming the child, with its last log lines) on a crash loop.
        Call it from the thread that started the stack (restarted children then keep their
        parent-death signal)."""
        while until is None or not until():
            self.heal()
            time.sleep(poll_interval)

    def stop(self) -> None:
        """Stop every child in reverse start order, by PID, waiting for each. Idempotent."""
        self.supervisor.close()
        tiers: list[list[ManagedProcess]] = [
            list(self._migrations),
            [self.gateway.process] if self.gateway and self.gateway.process else [],
            [rp.process for rp in self.replicas],
            [x.process for x in (self.smtp, self.s3, self.nats) if x and x.process],
            [self.postgres.process] if self.postgres and self.postgres.process else [],
        ]
        for tier in tiers:
            for child in tier:
                child.send_stop()
            for child in tier:
                with contextlib.suppress(Exception):
                    child.wait_stopped()
        unhold_ports(self._claimed)
        release_ports(self._claimed)
        previous = read_stack_json(self.data_dir)
        if previous and previous.get("supervisor_pid") == os.getpid():
            with contextlib.suppress(OSError):
                self._write_json({**previous, "state": "stopped"})

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- reporting

    def _event(self, message: str) -> None:
        """A supervisor line: to ``log`` and to ``logs/supervisor.log``."""
        with contextlib.suppress(OSError):
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            with (self.logs_dir / "supervisor.log").open("a") as fh:
                fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        self._log(message)

    def _children_changed(self) -> None:
        """A PID changed: keep ``stack.json`` current."""
        if self._started_at is not None:
            with contextlib.suppress(OSError):
                self._write_stack_json("running")

    @staticmethod
    def _foreign(port: int, process: ManagedProcess | None) -> str:
        """Why a child may never have become ready: another program listens on its port."""
        if process is not None and listens(process.pid, port):
            return ""
        holders = describe_holders(port)
        return f"\nport {port} is in use by another process{holders}" if holders else ""

    def _tails(self, replicas: Iterator[ReplicaProcess] | Sequence[ReplicaProcess]) -> str:
        return "\n".join(
            f"--- last lines of {rp.process.log_path} ---\n{rp.process.tail(15)}" for rp in replicas
        )

    def info(self) -> dict[str, Any]:
        """What ``stack.json`` holds: URLs, ports, PIDs, credentials of the dev stack."""
        e = self.endpoints
        services: dict[str, list[dict[str, Any]]] = {}
        for rp in self.replicas:
            services.setdefault(rp.spec.name, []).append(
                {
                    "instance": rp.replica.instance_id,
                    "url": rp.url,
                    "port": rp.port,
                    "pid": rp.process.pid,
                    "log": str(rp.process.log_path),
                }
            )
        infra: dict[str, Any] = {x.name: x.info() for x in self.infrastructure}
        if e is not None and self.config.external:
            infra = {
                "postgres": {"url": e.database_url},
                "nats": {"url": e.nats_url},
                "s3": {"endpoint": e.s3_endpoint, "access_key": e.s3_access_key},
                "smtp": {"host": e.smtp_host, "port": e.smtp_port},
            }
        gateway = self.gateway.info() if self.gateway else {}
        return {
            "supervisor_pid": os.getpid(),
            "started_at": self._started_at or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "restarts": {
                name: self.supervisor.restarts_of(name)
                for name in self.supervisor.names()
                if self.supervisor.restarts_of(name)
            },
            "startup_seconds": round(self.startup_seconds or 0.0, 2),
            "data_dir": str(self.data_dir),
            "external": self.config.external,
            "gateway_url": gateway.get("url"),
            "public_url": e.public_base_url if e else None,
            "jwks_url": e.jwks_url if e else None,
            "database_url": e.database_url if e else None,
            "nats_url": e.nats_url if e else None,
            "gateway": gateway,
            "infrastructure": infra,
            "services": services,
            "mail_dir": str(self.mail_dir),
            "logs_dir": str(self.logs_dir),
            "ports": self._ports(),
            "python": sys.executable,
        }

    def _ports(self) -> dict[str, Any]:
        services = {rp.replica.instance_id: rp.port for rp in self.replicas}
        ports: dict[str, Any] = {"services": services}
        if self.gateway:
            ports["gateway"] = self.gateway.port
        if self.postgres:
            ports["postgres"] = self.postgres.port
        if self.nats:
            ports["nats"] = self.nats.port
            ports["nats_monitor"] = self.nats.monitor_port
        if self.s3:
            ports["s3"] = dict(self.s3.ports)
        if self.smtp:
            ports["smtp"] = self.smtp.port
        return ports

    def _write_stack_json(self, state: str) -> None:
        self._write_json({"state": state, **self.info()})

    def _write_json(self, data: dict[str, Any]) -> None:
        tmp = self.stack_json.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.stack_json)
