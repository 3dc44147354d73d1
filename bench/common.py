"""What every benchmark shares: embedded infrastructure, server processes, the load generator,
and the hello-world ceiling that every HTTP figure is a ratio of."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs in the lock file

from bench.reference import DSN_VARIABLE, count_projected, prepare
from bench.servers import app_command, service_command
from coursemesh.devstack.infra import EmbeddedNats, EmbeddedPostgres
from coursemesh.devstack.infra.gateway import CaddyGateway
from coursemesh.devstack.ports import free_port
from coursemesh.devstack.process import ManagedProcess, wait_until
from coursemesh.devstack.stack import Stack

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


@dataclass
class Infra:
    postgres_url: str
    nats_url: str


@contextmanager
def embedded_infra(workdir: Path) -> Iterator[Infra]:
    """PostgreSQL + NATS for a benchmark: external ones from COURSEMESH_BENCH_* when set."""
    external_db = os.environ.get("COURSEMESH_BENCH_DATABASE_URL")
    external_nats = os.environ.get("COURSEMESH_BENCH_NATS_URL")
    if external_db and external_nats:
        yield Infra(external_db, external_nats)
        return
    pg = EmbeddedPostgres(workdir / "pg").start()
    nats = EmbeddedNats(workdir / "nats").start()
    try:
        yield Infra(pg.sqlalchemy_url, nats.url)
    finally:
        nats.stop()
        pg.stop()


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status < 500:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout}s")
        time.sleep(0.05)


@dataclass
class ServedApp:
    url: str
    process: ManagedProcess

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid


@contextmanager
def serve_app(
    target: str,
    *,
    server: str = "uvicorn",
    env: Mapping[str, str] | None = None,
    factory: bool = False,
    log: Path | None = None,
    ready_path: str = "/hello",
) -> Iterator[ServedApp]:
    """Serve ASGI ``target`` as the stack serves a service (``bench.servers``)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        target,
        app_command(server, target, port, factory=factory),
        log_path=log or Path(tempfile.gettempdir()) / f"bench-{port}.log",
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )
    process.start()
    try:
        wait_http(url + ready_path)
        yield ServedApp(url, process)
    finally:
        process.stop(15)


def load(url: str, *, connections: int = 32, duration: float = 8.0, **kw: Any) -> dict[str, Any]:
    """Run the load generator in its own process and return its JSON result."""
    argv = [sys.executable, "-m", "bench.loadgen", url, "-c", str(connections)]
    argv += ["-d", str(duration), "--json"]
    for name, value in kw.get("headers", {}).items():
        argv += ["-H", f"{name}: {value}"]
    if "method" in kw:
        argv += ["-m", kw["method"]]
    if "body" in kw:
        argv += ["--body", kw["body"]]
    if "tokens_file" in kw:
        argv += ["--tokens-file", str(kw["tokens_file"])]
    out = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def with_ratio(result: dict[str, Any], ceiling: dict[str, Any]) -> dict[str, Any]:
    """A load result with its throughput as a share of the hello-world ceiling's."""
    return {**result, "ratio_to_hello": round(result["rps"] / ceiling["rps"], 3)}


def hello_world_ceiling(duration: float = 8.0, server: str = "uvicorn") -> dict[str, Any]:
    with serve_app("bench.hello:app", server=server) as app:
        return load(f"{app.url}/hello", duration=duration)


#: Share of requests the services trace during a benchmark: head sampling as a production
#: deployment runs it (``--trace-sample-ratio 1`` measures the fully traced development setup).
DEFAULT_TRACE_SAMPLE_RATIO = 0.01


def add_trace_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trace-sample-ratio",
        type=float,
        default=DEFAULT_TRACE_SAMPLE_RATIO,
        help="services' OTEL_SAMPLE_RATIO (share of requests traced)",
    )


@contextmanager
def bench_stack(
    name: str,
    trace_sample_ratio: float,
    extra_env: Mapping[str, str] | None = None,
    server: str = "uvicorn",
) -> Iterator[Stack]:
    """The whole suite started as ``make up`` starts it (every service under ``server``), on a
    throwaway data dir."""
    with (
        tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp,
        Stack(
            data_dir=Path(tmp) / "data",
            fresh=True,
            log_level="WARNING",
            trace_sample_ratio=trace_sample_ratio,
            extra_env=dict(extra_env or {}),
            service_command=service_command(server),
        ) as stack,
    ):
        yield stack


def enable_payments(
    http: httpx.Client, org_id: str, owner_auth: Mapping[str, str]
) -> dict[str, Any]:
    """Onboard an organization's payment account at the sandbox provider, as its owner does
    before selling anything paid (until then a paid checkout is refused with 409
    ``PAYMENTS_NOT_ENABLED``); the account as commerce then shows it, enabled. ``http`` is a
    client of the gateway, ``owner_auth`` the owner's (or an admin's) authorization header.

    As with Stripe Connect: ask for an onboarding link, submit the provider's onboarding form
    (its 303 to the return page is not followed), then ask for a link again. That second call
    reads the account back from the provider, so it answers the account enabled at once: no
    waiting for the provider's ``account.updated`` webhook, delivered asynchronously."""
    path = f"/organizations/{org_id}/payments/onboarding"

    def onboarding() -> dict[str, Any]:
        response = http.post(path, headers=dict(owner_auth))
        if response.status_code != 200:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")
        body: dict[str, Any] = response.json()
        return body

    form = urlsplit(onboarding()["url"]).path  # the sandbox's page, through the gateway
    submitted = http.post(
        form, content=b"", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    if submitted.status_code != 303:
        raise RuntimeError(f"POST {form}: {submitted.status_code} {submitted.text[:300]}")
    account: dict[str, Any] = onboarding()["account"]
    if account["status"] != "enabled":
        raise RuntimeError(f"org {org_id}: payment account not enabled after onboarding: {account}")
    return account


def record(name: str, result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"-> {path.relative_to(ROOT)}", file=sys.stderr)


def stack_processes(stack: Stack) -> dict[str, int]:
    """The PID of every process of the stack that serves a request: the service replicas, the
    gateway, PostgreSQL and NATS."""
    pids = {f"{rp.spec.name}-{i}": rp.process.pid for i, rp in enumerate(stack.replicas)}
    parts = (("caddy", stack.gateway), ("postgres", stack.postgres), ("nats", stack.nats))
    for name, part in parts:
        if part is not None and part.pid is not None:
            pids[name] = part.pid
    return {name: pid for name, pid in pids.items() if pid is not None}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live descendants (PostgreSQL's backends)."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in tree:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def load_with_cpu(processes: Stack | Mapping[str, int], url: str, **kw: Any) -> dict[str, Any]:
    """:func:`load`, plus the CPU each process (of a stack, or name -> PID) spent per request
    in the meantime (``cpu_ms_per_request``, and their sum in ``cpu_ms_per_request_total``;
    the load generator's own process not counted)."""
    pids = stack_processes(processes) if isinstance(processes, Stack) else dict(processes)
    before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    result = load(url, **kw)
    after = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    served = max(result["requests"], 1)
    spent = {name: (after[name] - before[name]) * 1000 / served for name in pids}
    result["cpu_ms_per_request"] = {name: round(ms, 3) for name, ms in spent.items()}
    result["cpu_ms_per_request_total"] = round(sum(spent.values()), 3)
    return result


@dataclass
class References:
    """The reference apps (``bench/reference.py``) of a benchmark run, behind their own Caddy
    running the suite's Caddyfile, on the stack's PostgreSQL."""

    gateway_url: str
    document_id: uuid.UUID
    database_url: str
    processes: dict[str, int]
    log_dir: Path

    def _wait_projected(self, process: ManagedProcess) -> None:
        wait_until(
            lambda: len(set(asyncio.run(count_projected(self.database_url)))) == 1,
            timeout=60,
            what="the reference consumer to project every order",
            interval=0.2,
            process=process,
        )

    @contextmanager
    def consumer(self) -> Iterator[None]:
        """The reference consumer running (its CPU counted with the others once it has caught
        up with earlier orders), stopped once it has projected every order."""
        process = ManagedProcess(
            "reference-consumer",
            [sys.executable, "-m", "bench.reference", "consume"],
            log_path=self.log_dir / "reference-consumer.log",
            env={**os.environ, DSN_VARIABLE: self.database_url},
            cwd=ROOT,
        ).start()
        wait_until(
            lambda: "consumer ready" in process.tail(),
            timeout=30,
            what="the reference consumer",
            process=process,
        )
        assert process.pid is not None
        try:
            self._wait_projected(process)  # what was written before is not this load's work
            self.processes["reference-consumer"] = process.pid
            yield
            self._wait_projected(process)
        finally:
            self.processes.pop("reference-consumer", None)
            process.stop()


@contextmanager
def reference_apps(stack: Stack, server: str, document: bytes) -> Iterator[References]:
    """Start the reference app under ``server`` and a gateway in front of it, with ``document``
    stored as the primary-key select's row."""
    assert stack.endpoints is not None
    assert stack.postgres is not None
    database_url = stack.endpoints.database_url
    document_id = asyncio.run(prepare(database_url, document))
    log_dir = stack.logs_dir
    with serve_app(
        "bench.reference:create_app",
        server=server,
        env={DSN_VARIABLE: database_url},
        factory=True,
        log=log_dir / "reference.log",
        ready_path="/health/live",
    ) as app:
        gateway = CaddyGateway(
            {"catalog": [urlsplit(app.url).netloc]},
            state_dir=stack.data_dir / "reference-gateway",
            log_path=log_dir / "reference-gateway.log",
        )
        gateway.start(30)
        try:
            assert gateway.pid is not None
            assert stack.postgres.pid is not None
            yield References(
                gateway_url=gateway.url,
                document_id=document_id,
                database_url=database_url,
                processes={
                    "reference": app.pid,
                    "reference-caddy": gateway.pid,
                    "postgres": stack.postgres.pid,
                },
                log_dir=log_dir,
            )
        finally:
            gateway.stop()
