"""The services the development stack runs, and the environment each replica gets.

Data-driven: to give a service a new variable, add an entry to its ``env`` mapping (or to
``COMMON_ENV`` for all of them). Every value is computed from the :class:`StackEndpoints`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class StackEndpoints:
    """Everything a service replica may need to know about the running stack."""

    database_url: str
    nats_url: str
    gateway_url: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    smtp_host: str
    smtp_port: int
    telemetry_dir: Path
    # Commerce's sandbox payment provider signs its webhooks with secrets derived from it.
    sandbox_webhook_key: str = field(repr=False)
    s3_region: str = "us-east-1"
    log_level: str = "INFO"
    trace_sample_ratio: float = 1.0
    # Where clients reach the gateway (``--public-url``): the base of every link the services
    # hand out (payment pages, return pages, audio). None: ``gateway_url``.
    public_url: str | None = None
    # Learning signs the unsubscribe links of its reminder e-mails with it.
    reminder_key: str | None = field(default=None, repr=False)

    @property
    def jwks_url(self) -> str:
        return f"{self.gateway_url}/.well-known/jwks.json"

    @property
    def public_base_url(self) -> str:
        return self.public_url or self.gateway_url


@dataclass(frozen=True)
class Replica:
    """One running copy of a service."""

    service: str
    index: int  # 1-based

    @property
    def instance_id(self) -> str:
        return f"{self.service}-{self.index}"


EnvValue = Callable[[StackEndpoints, Replica], str]


def _const(value: str) -> EnvValue:
    return lambda _e, _r: value


JWT_ISSUER = "coursemesh-dev"

#: Variables every service gets (each prefixed with the service's ``env_prefix``).
COMMON_ENV: Mapping[str, EnvValue] = {
    "DATABASE_URL": lambda e, _r: e.database_url,
    "NATS_URL": lambda e, _r: e.nats_url,
    "JWKS_URL": lambda e, _r: e.jwks_url,
    "JWT_ISSUER": _const(JWT_ISSUER),
    "OTEL_EXPORTER": _const("file"),
    "OTEL_FILE": lambda e, r: str(e.telemetry_dir / f"{r.instance_id}.jsonl"),
    "OTEL_SAMPLE_RATIO": lambda e, _r: str(e.trace_sample_ratio),
    "LOG_LEVEL": lambda e, _r: e.log_level,
    "INSTANCE_ID": lambda _e, r: r.instance_id,
    "PUBLIC_BASE_URL": lambda e, _r: e.public_base_url,
}


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the suite."""

    name: str  # as in URLs and logs: "custom-gen"
    package: str  # python package: "coursemesh.customgen"
    env_prefix: str  # "CUSTOMGEN_"
    env: Mapping[str, EnvValue] = field(default_factory=dict)

    @property
    def app_factory(self) -> str:
        """The ASGI factory, ``module:callable``."""
        return f"{self.package}.main:create_app"

    @property
    def upstreams_var(self) -> str:
        """The gateway variable listing this service's replicas (``CATALOG_UPSTREAMS``)."""
        return f"{self.env_prefix}UPSTREAMS"

    def environment(self, endpoints: StackEndpoints, replica: Replica) -> dict[str, str]:
        """The service's own variables (prefixed) for ``replica``."""
        variables = {**COMMON_ENV, **self.env}
        return {f"{self.env_prefix}{k}": fn(endpoints, replica) for k, fn in variables.items()}


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("catalog", "coursemesh.catalog", "CATALOG_"),
    ServiceSpec(
        "commerce",
        "coursemesh.commerce",
        "COMMERCE_",
        env={
            "SMTP_HOST": lambda e, _r: e.smtp_host,
            "SMTP_PORT": lambda e, _r: str(e.smtp_port),
            "MAIL_FROM": _const("coursemesh <no-reply@coursemesh.local>"),
            "PAYMENT_PROVIDER": _const("sandbox"),
            "SANDBOX_WEBHOOK_KEY": lambda e, _r: e.sandbox_webhook_key,
        },
    ),
    ServiceSpec(
        "learning",
        "coursemesh.learning",
        "LEARNING_",
        env={
            "SMTP_HOST": lambda e, _r: e.smtp_host,
            "SMTP_PORT": lambda e, _r: str(e.smtp_port),
            "MAIL_FROM": _const("coursemesh <reminders@coursemesh.local>"),
            "REMINDER_KEY": lambda e, _r: e.reminder_key or "",
            "S3_ENDPOINT": lambda e, _r: e.s3_endpoint,
            "S3_ACCESS_KEY": lambda e, _r: e.s3_access_key,
            "S3_SECRET_KEY": lambda e, _r: e.s3_secret_key,
            "S3_BUCKET": _const("coursemesh-certificates"),
            "S3_REGION": lambda e, _r: e.s3_region,
        },
    ),
    ServiceSpec(
        "custom-gen",
        "coursemesh.customgen",
        "CUSTOMGEN_",
        env={
            "S3_ENDPOINT": lambda e, _r: e.s3_endpoint,
            "S3_ACCESS_KEY": lambda e, _r: e.s3_access_key,
            "S3_SECRET_KEY": lambda e, _r: e.s3_secret_key,
            "S3_BUCKET": _const("coursemesh-audio"),
            "S3_REGION": lambda e, _r: e.s3_region,
        },
    ),
    ServiceSpec(
        "integrations",
        "coursemesh.integrations",
        "INTEGRATIONS_",
        # The development stack's receivers (a developer's tunnel, the tests' servers) listen
        # on this machine, which production refuses as a webhook destination.
        env={"ALLOW_LOOPBACK_ENDPOINTS": _const("true")},
    ),
)

#: Buckets the stack creates before services start.
S3_BUCKETS: tuple[str, ...] = ("coursemesh-audio", "coursemesh-certificates")


def service(name: str) -> ServiceSpec:
    for spec in SERVICES:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown service {name!r}; known: {', '.join(s.name for s in SERVICES)}")


#: Builds a replica's command line: (spec, port) -> argv.
ServiceCommand = Callable[[ServiceSpec, int], Sequence[str]]
#: Builds a service's migration command line: spec -> argv.
MigrateCommand = Callable[[ServiceSpec], Sequence[str]]


def uvicorn_command(spec: ServiceSpec, port: int) -> list[str]:
    """``python -m uvicorn --factory <pkg>.main:create_app`` on ``127.0.0.1:port``."""
    return [
        sys.executable, "-m", "uvicorn", "--factory", spec.app_factory,
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
    ]  # fmt: skip


def migrate_command(spec: ServiceSpec) -> list[str]:
    """``python -m coursemesh.chassis.migrate <name>`` (exits 0 on success)."""
    return [sys.executable, "-m", "coursemesh.chassis.migrate", spec.name]
