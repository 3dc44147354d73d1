"""Settings from the environment: one prefix per service, every problem named at once."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

import msgspec


class SettingsError(RuntimeError):
    """Raised with one line per missing or invalid variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


class ServiceSettings(msgspec.Struct, kw_only=True, frozen=True):
    """What every service needs. Services subclass it to add their own variables."""

    database_url: str
    nats_url: str
    jwks_url: str | None = None
    jwt_public_key_file: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    public_base_url: str = "http://127.0.0.1:8080"
    otel_exporter: Literal["none", "console", "file", "otlp"] = "none"
    otel_file: str | None = None
    otel_endpoint: str | None = None
    # OTLP/HTTP metrics URL; by default the one next to OTEL_ENDPOINT (``…/v1/metrics``).
    otel_metrics_endpoint: str | None = None
    # How often gauges that need a round trip (outbox, consumers) are sampled, and how often
    # metrics are pushed with the OTLP exporter. ``GET /metrics`` is always served.
    metrics_interval_seconds: float = 15.0
    # Share of requests without an incoming traceparent that are traced (head sampling).
    otel_sample_ratio: float = 1.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    instance_id: str = msgspec.field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}"
    )
    db_pool_size: int = 10
    # A request whose database is unreachable is answered 503 DATABASE_UNAVAILABLE once opening
    # a connection took this long, or once it waited this long for a pooled one: well within
    # the gateway's upstream timeout, instead of the driver's 60 s and the pool's 30 s.
    db_connect_timeout_seconds: float = 3.0
    db_pool_timeout_seconds: float = 5.0
    max_body_bytes: int = 1_048_576
    relay_batch_size: int = 500
    consumer_max_deliver: int = 5
    # How soon a delivery a killed process never acked comes again: catch-up waits on it.
    consumer_ack_wait_seconds: float = 5.0
    run_workers: bool = True
    # Read-your-writes: negative answers wait until this service has caught up with its
    # streams, at most this long (then 503 CATCHING_UP), with at most this many waiting at once.
    # ``catch_up`` off only for a process whose projections are not fed by its consumers
    # (a service's own HTTP tests apply events directly).
    catch_up: bool = True
    consistency_timeout_seconds: float = 5.0
    consistency_max_waiters: int = 256
    # One log line per HTTP request (method, path, status, duration, request and trace ids).
    access_log: bool = True
    # Origins allowed to call the API from a browser, comma-separated (``https://app.example``,
    # no trailing slash; ``*``: any); empty: CORS off, no CORS headers at all.
    cors_allow_origins: str = ""
    # Copies of each JetStream stream this service creates (1 on a single server; 3 on a
    # three-node JetStream cluster). A stream already as configured is left alone at start.
    stream_replicas: int = 1

    def __post_init__(self) -> None:
        if not self.jwks_url and not self.jwt_public_key_file:
            raise ValueError("one of JWKS_URL or JWT_PUBLIC_KEY_FILE is required")
        if not 0.0 <= self.otel_sample_ratio <= 1.0:
            raise ValueError("OTEL_SAMPLE_RATIO must be between 0 and 1")
        if self.db_connect_timeout_seconds <= 0 or self.db_pool_timeout_seconds <= 0:
            raise ValueError("DB_CONNECT_TIMEOUT_SECONDS and DB_POOL_TIMEOUT_SECONDS must be > 0")
        if not 1 <= self.stream_replicas <= 5:
            raise ValueError("STREAM_REPLICAS must be between 1 and 5 (JetStream's limit)")
        for origin in self.cors_origins:
            if origin != "*" and ("://" not in origin or origin.endswith("/")):
                raise ValueError(
                    f"CORS_ALLOW_ORIGINS: {origin!r} is not an origin (scheme://host[:port])"
                )

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.cors_allow_origins.split(",") if part.strip())


S = TypeVar("S", bound=ServiceSettings)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def load_settings(cls: type[S], prefix: str, environ: Mapping[str, str] | None = None) -> S:
    """Build ``cls`` from ``<PREFIX><FIELD>`` variables; raise :class:`SettingsError` naming each
    missing or invalid variable."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[str] = []
    for field in msgspec.structs.fields(cls):
        name = f"{prefix}{field.name.upper()}"
        raw = env.get(name)
        if raw is None or raw == "":
            if field.required:
                problems.append(f"{name} is required")
            continue
        try:
            values[field.name] = _convert(raw, field.type)
        except (msgspec.ValidationError, ValueError) as exc:
            problems.append(f"{name}={raw!r} is invalid: {exc}")
    if problems:
        raise SettingsError(problems)
    try:
        return msgspec.convert(values, type=cls)
    except (msgspec.ValidationError, ValueError) as exc:
        raise SettingsError([f"{prefix}*: {exc}"]) from exc


def _convert(raw: str, type_: Any) -> Any:
    if type_ is bool or type_ == (bool | None):
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError("expected a boolean (true/false/1/0)")
    if raw.lstrip().startswith(("[", "{")):
        return msgspec.convert(msgspec.json.decode(raw), type=type_, strict=False)
    return msgspec.convert(raw, type=type_, strict=False)
