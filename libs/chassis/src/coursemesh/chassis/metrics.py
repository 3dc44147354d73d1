"""Metrics: OpenTelemetry instruments, scraped by Prometheus at ``GET /metrics`` and, with the
OTLP exporter, also pushed to a collector.

What every service exports (Prometheus names; docs/service-guide.md lists them all):

- **RED per route**: ``http_server_request_duration_seconds`` (a histogram; its ``_count`` is the
  rate, ``http_response_status_code`` gives the errors), labelled with the route's template
  (``/organizations/{org_id:uuid}/courses``), never the raw path, so an id does not become a
  label value;
- **outbox**: rows not yet on the bus and the age of the oldest of them;
- **consumers**: messages pending and awaiting ack per stream (read from JetStream, so every
  replica reports the same durable consumer), applied, redelivered and dead-lettered messages;
- **database pool**: connections in use and idle, and the pool's size;
- **read-your-writes**: catch-up waits and the ones that ended in ``503 CATCHING_UP``.

A service adds its own instruments through the OpenTelemetry metrics API, which reaches the
same provider (commerce: webhook outcomes, cross-org mismatches).

Gauges that need a round trip (the outbox's rows, a consumer's state in JetStream) are sampled
by one background task per process every ``METRICS_INTERVAL_SECONDS``; a scrape reads the last
sample and never waits on the database or the bus.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from litestar import MediaType, Request, Response, get
from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

if TYPE_CHECKING:
    from coursemesh.chassis.consistency import CatchUp
    from coursemesh.chassis.consumer import ConsumerRunner
    from coursemesh.chassis.db import Database
    from coursemesh.chassis.publisher import ImmediatePublisher

log = logging.getLogger("coursemesh.metrics")

METER_NAME = "coursemesh"
#: Seconds: from a fast read to the gateway's upstream timeout.
DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
#: The route label of a request no route matched (a 404 or 405 before any handler).
UNMATCHED_ROUTE = "unmatched"

_provider: MeterProvider | None = None


def setup_metrics(
    *,
    service: str,
    instance_id: str,
    exporter: str,
    endpoint: str | None = None,
    interval_seconds: float = 15.0,
) -> MeterProvider:
    """Install the global meter provider once per process (idempotent): the Prometheus reader
    always, the OTLP/HTTP exporter too when ``exporter == "otlp"``."""
    global _provider
    if _provider is not None:
        return _provider
    readers: list[MetricReader] = [
        PrometheusMetricReader(
            scope_info_enabled=False,
            resource_attribute_filter=lambda key: key in {"service.name", "service.instance.id"},
        )
    ]
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        readers.append(
            PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=endpoint) if endpoint else OTLPMetricExporter(),
                export_interval_millis=interval_seconds * 1000,
            )
        )
    resource = Resource.create({"service.name": service, "service.instance.id": instance_id})
    _provider = MeterProvider(resource=resource, metric_readers=readers)
    metrics.set_meter_provider(_provider)
    return _provider


def metrics_endpoint(traces_endpoint: str | None) -> str | None:
    """The OTLP/HTTP metrics URL next to a traces URL (``…/v1/traces`` -> ``…/v1/metrics``)."""
    if traces_endpoint and traces_endpoint.rstrip("/").endswith("/v1/traces"):
        return traces_endpoint.rstrip("/").removesuffix("/v1/traces") + "/v1/metrics"
    return None


def meter(name: str = METER_NAME) -> metrics.Meter:
    """A meter for a service's own instruments (a no-op until :func:`setup_metrics`)."""
    return metrics.get_meter(name)


@get("/metrics", include_in_schema=False, media_type=MediaType.TEXT, sync_to_thread=False)
def serve_metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Every instrument of the process and the process' own figures, in the format the
    scraper asks for (Prometheus text by default, OpenMetrics on request)."""
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(REGISTRY), headers={"content-type": content_type})


class HttpServerMetrics:
    """The RED histogram of HTTP requests, recorded by the access middleware."""

    def __init__(self) -> None:
        self._duration = meter().create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP requests, by method, route template and status",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )

    def record(self, method: str, route: str | None, status: int, seconds: float) -> None:
        self._duration.record(
            seconds,
            {
                "http.request.method": method,
                "http.route": route or UNMATCHED_ROUTE,
                "http.response.status_code": status,
            },
        )


# --- the running service's state -------------------------------------------------------------


@dataclass
class ConsumerSample:
    pending: int = 0
    ack_pending: int = 0


@dataclass
class ServiceState:
    """What one running service exposes to the observable instruments: live objects read at
    collection time, and the sampler's last figures for what needs a round trip."""

    db: Database
    publisher: ImmediatePublisher | None = None
    catch_up: CatchUp | None = None
    consumers: Sequence[ConsumerRunner] = ()
    outbox_unpublished: int = 0
    outbox_lag_seconds: float = 0.0
    consumer_samples: dict[tuple[str, str], ConsumerSample] = field(default_factory=dict)
    sampled_at: float | None = None


_OUTBOX_SAMPLE = """
SELECT count(*) AS unpublished,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS lag
  FROM "{schema}".outbox
 WHERE published_at IS NULL
"""

#: The services running in this process (one in production; tests may run several).
_running: list[ServiceState] = []


def register(state: ServiceState) -> Callable[[], None]:
    """Expose ``state`` through the instruments until the returned function is called."""
    _instruments()
    _running.append(state)

    def unregister() -> None:
        if state in _running:
            _running.remove(state)

    return unregister


async def sample(state: ServiceState, js: Any) -> None:
    """Refresh the figures that need a round trip. A failed read keeps the previous figure
    (and says so in the log): a scrape is never the thing that fails."""
    try:
        async with state.db.reading() as conn:
            row = await conn.fetchrow(_OUTBOX_SAMPLE.format(schema=state.db.schema))
        if row is not None:
            state.outbox_unpublished = int(row["unpublished"])
            state.outbox_lag_seconds = float(row["lag"])
    except Exception as exc:
        log.info("metrics: outbox not sampled: %s", exc)
    for runner in state.consumers:
        try:
            info = await js.consumer_info(runner.stream, runner.consumer)
        except Exception as exc:
            log.info("metrics: consumer %s/%s not sampled: %s", runner.stream, runner.consumer, exc)
            continue
        state.consumer_samples[(runner.stream, runner.consumer)] = ConsumerSample(
            pending=int(info.num_pending or 0), ack_pending=int(info.num_ack_pending or 0)
        )
    state.sampled_at = time.monotonic()


async def sample_periodically(state: ServiceState, js: Any, interval: float) -> None:
    while True:
        await sample(state, js)
        await asyncio.sleep(interval)


def _observe(
    read: Callable[[ServiceState], Iterable[tuple[float, dict[str, str]]]],
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def callback(_: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(value, attributes)
            for state in list(_running)
            for value, attributes in read(state)
        ]

    return callback


def _per_consumer(
    read: Callable[[ConsumerRunner], int],
) -> Callable[[ServiceState], Iterable[tuple[float, dict[str, str]]]]:
    return lambda state: [
        (read(runner), {"stream": runner.stream, "consumer": runner.consumer})
        for runner in state.consumers
    ]


def _sampled(
    read: Callable[[ConsumerSample], int],
) -> Callable[[ServiceState], Iterable[tuple[float, dict[str, str]]]]:
    return lambda state: [
        (read(figures), {"stream": stream, "consumer": consumer})
        for (stream, consumer), figures in state.consumer_samples.items()
    ]


def _pool(state: ServiceState) -> Iterable[tuple[float, dict[str, str]]]:
    pool: Any = state.db.engine.sync_engine.pool
    used = int(pool.checkedout())
    return [
        (used, {"db.client.connection.state": "used"}),
        (max(int(pool.checkedin()), 0), {"db.client.connection.state": "idle"}),
    ]


def _pool_max(state: ServiceState) -> Iterable[tuple[float, dict[str, str]]]:
    pool: Any = state.db.engine.sync_engine.pool
    return [(int(pool.size()), {})]


def _publisher(state: ServiceState) -> Iterable[tuple[float, dict[str, str]]]:
    if state.publisher is None:
        return []
    return [
        (state.publisher.published_total, {"outcome": "published"}),
        (state.publisher.failed_total, {"outcome": "left_to_relay"}),
    ]


def _catch_up(
    read: Callable[[CatchUp], int],
) -> Callable[[ServiceState], Iterable[tuple[float, dict[str, str]]]]:
    return lambda state: [] if state.catch_up is None else [(read(state.catch_up), {})]


_created = False


def _instruments() -> None:
    """The observable instruments, created once per process; their callbacks read every
    registered service."""
    global _created
    if _created:
        return
    _created = True
    m = meter()
    m.create_observable_gauge(
        "coursemesh.outbox.unpublished",
        [_observe(lambda s: [(s.outbox_unpublished, {})])],
        unit="{row}",
        description="Outbox rows not yet published to the bus",
    )
    m.create_observable_gauge(
        "coursemesh.outbox.lag",
        [_observe(lambda s: [(s.outbox_lag_seconds, {})])],
        unit="s",
        description="Age of the oldest outbox row not yet published (0: none waiting)",
    )
    m.create_observable_counter(
        "coursemesh.outbox.immediate",
        [_observe(_publisher)],
        unit="{event}",
        description="Events a write published itself, and those it left to the relay",
    )
    m.create_observable_gauge(
        "coursemesh.consumer.pending",
        [_observe(_sampled(lambda c: c.pending))],
        unit="{message}",
        description="Messages of the stream the durable consumer has not delivered yet",
    )
    m.create_observable_gauge(
        "coursemesh.consumer.ack_pending",
        [_observe(_sampled(lambda c: c.ack_pending))],
        unit="{message}",
        description="Messages delivered to the durable consumer and not acknowledged yet",
    )
    m.create_observable_counter(
        "coursemesh.consumer.applied",
        [_observe(_per_consumer(lambda r: r.processed_total))],
        unit="{message}",
        description="Messages this process applied",
    )
    m.create_observable_counter(
        "coursemesh.consumer.redelivered",
        [_observe(_per_consumer(lambda r: r.redelivered_total))],
        unit="{message}",
        description="Messages this process received again (a retry or an earlier lost ack)",
    )
    m.create_observable_counter(
        "coursemesh.consumer.dead_lettered",
        [_observe(_per_consumer(lambda r: r.dead_lettered_total))],
        unit="{message}",
        description="Messages this process parked in the dead-letter stream",
    )
    m.create_observable_gauge(
        "db.client.connection.count",
        [_observe(_pool)],
        unit="{connection}",
        description="Pooled database connections, in use and idle",
    )
    m.create_observable_gauge(
        "db.client.connection.max",
        [_observe(_pool_max)],
        unit="{connection}",
        description="The database pool's size",
    )
    m.create_observable_counter(
        "coursemesh.consistency.waits",
        [_observe(_catch_up(lambda c: c.waits_total))],
        unit="{request}",
        description="Requests that waited for this service to catch up with its streams",
    )
    m.create_observable_counter(
        "coursemesh.consistency.failures",
        [_observe(_catch_up(lambda c: c.failures_total))],
        unit="{request}",
        description="Catch-up waits answered 503 CATCHING_UP (too slow, too many, bus away)",
    )
