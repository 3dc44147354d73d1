"""The Litestar application factory every service uses.

It wires settings, logging, tracing, the database, NATS, stream provisioning, the outbox relay,
the consumers, auth, error mapping and health into one app; a service adds its routes, its
subscriptions and any background workers of its own.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.base import DefineMiddleware
from litestar.plugins.opentelemetry import OpenTelemetryConfig
from litestar.types import ControllerRouterHandler
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.metrics import NoOpMeterProvider

from coursemesh.chassis.access import RequestLog, cors_config
from coursemesh.chassis.auth import JwtVerifier, Principal, provide_principal
from coursemesh.chassis.bus import Bus, ensure_streams
from coursemesh.chassis.consistency import CatchUp, CatchUpSlot, ConsistencyMiddleware
from coursemesh.chassis.consumer import ConsumerRunner, Subscription, purge_inbox_periodically
from coursemesh.chassis.db import Database
from coursemesh.chassis.edge import BodyGuard
from coursemesh.chassis.errors import exception_handlers
from coursemesh.chassis.health import HealthController
from coursemesh.chassis.metrics import (
    HttpServerMetrics,
    ServiceState,
    metrics_endpoint,
    register,
    sample_periodically,
    serve_metrics,
    setup_metrics,
)
from coursemesh.chassis.migrations import head_revision
from coursemesh.chassis.openapi import openapi_config, serve_openapi
from coursemesh.chassis.outbox import OutboxRelay
from coursemesh.chassis.publisher import IMMEDIATE_GRACE, ImmediatePublisher
from coursemesh.chassis.service import ServiceDefinition
from coursemesh.chassis.settings import ServiceSettings
from coursemesh.chassis.tasks import cancel_and_wait
from coursemesh.chassis.telemetry import (
    OpenTelemetryPlugin,
    head_sampled_tracing,
    setup_logging,
    setup_tracing,
    shutdown_tracing,
)

log = logging.getLogger("coursemesh.app")
S = TypeVar("S", bound=ServiceSettings)


@dataclass
class ServiceContext(Generic[S]):
    """Everything a running service shares: reachable from handlers as ``app.state.ctx``."""

    definition: ServiceDefinition[S]
    settings: S
    db: Database
    bus: Bus
    head_revision: str | None
    relay: OutboxRelay | None = None
    publisher: ImmediatePublisher | None = None
    catch_up: CatchUp | None = None
    consumers: list[ConsumerRunner] = field(default_factory=list)
    runtime: object = None  # what the service's bootstrap built (see ``runtime_of``)

    def wake_relay(self) -> None:
        if self.relay is not None:
            self.relay.wake()


Worker = Callable[[ServiceContext[Any]], Awaitable[None]]
#: A service's bootstrap: builds, from the running context, the one object its handlers,
#: consumers and workers share (its adapters wired to its use cases), and closes it at the end.
Bootstrap = Callable[[ServiceContext[Any]], AbstractAsyncContextManager[object]]
R = TypeVar("R")


def runtime_of(source: Request[Any, Any, Any] | Litestar | ServiceContext[Any], kind: type[R]) -> R:
    """The runtime the service's bootstrap built, checked to be a ``kind``: each service wraps
    this in one typed accessor (``bootstrap.runtime(request)``)."""
    if isinstance(source, ServiceContext):
        runtime = source.runtime
    else:
        app = source if isinstance(source, Litestar) else source.app
        runtime = app.state.ctx.runtime
    if not isinstance(runtime, kind):
        raise RuntimeError(
            f"the service's runtime is {type(runtime).__name__}, not {kind.__name__}"
        )
    return runtime


async def supervise(
    name: str, run: Callable[[], Awaitable[None]], restart_delay: float = 1.0
) -> None:
    """Run a background loop forever; if it crashes, log it and start it again."""
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s crashed; restarting", name)
            await asyncio.sleep(restart_delay)


def create_service_app(
    definition: ServiceDefinition[S],
    *,
    route_handlers: Sequence[ControllerRouterHandler] = (),
    subscriptions: Sequence[Subscription] = (),
    workers: Sequence[tuple[str, Worker]] = (),
    bootstrap: Bootstrap | None = None,
    dependencies: dict[str, Provide] | None = None,
    settings: S | None = None,
) -> Litestar:
    settings = settings or definition.load_settings()
    setup_logging(
        service=definition.name,
        instance_id=settings.instance_id,
        level=settings.log_level,
        fmt=settings.log_format,
    )
    tracer_provider = setup_tracing(
        service=definition.name,
        instance_id=settings.instance_id,
        exporter=settings.otel_exporter,
        file=settings.otel_file,
        endpoint=settings.otel_endpoint,
    )
    setup_metrics(
        service=definition.name,
        instance_id=settings.instance_id,
        exporter=settings.otel_exporter,
        endpoint=settings.otel_metrics_endpoint or metrics_endpoint(settings.otel_endpoint),
        interval_seconds=settings.metrics_interval_seconds,
    )
    # SQL spans at the driver: SQLAlchemy's own instrumentation does not support 2.1 yet.
    sql_instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    if not sql_instrumentor.is_instrumented_by_opentelemetry:
        sql_instrumentor.instrument(tracer_provider=tracer_provider)
    slot = CatchUpSlot()
    verifier = JwtVerifier.from_settings(
        jwks_url=settings.jwks_url,
        public_key_file=settings.jwt_public_key_file,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            db = Database(
                settings.database_url,
                definition.schema,
                application_name=f"{definition.name}:{settings.instance_id}",
                pool_size=settings.db_pool_size,
                connect_timeout=settings.db_connect_timeout_seconds,
                pool_timeout=settings.db_pool_timeout_seconds,
            )
            stack.push_async_callback(db.dispose)
            bus = await Bus.connect(settings.nats_url, f"{definition.name}:{settings.instance_id}")
            stack.push_async_callback(bus.close)
            # Producers and consumers both provision, so start-up order does not matter.
            consumed = {sub.stream.lower() for sub in subscriptions}
            await ensure_streams(bus.js, {definition.source, *consumed}, settings.stream_replicas)
            ctx: ServiceContext[S] = ServiceContext(
                definition=definition,
                settings=settings,
                db=db,
                bus=bus,
                head_revision=head_revision(definition),
            )
            app.state.ctx = ctx
            app.state.db = db
            app.state.settings = settings
            # Writes publish their events before they answer; the relay publishes what a
            # failed immediate publish left behind.
            ctx.publisher = ImmediatePublisher(
                bus.js,
                db.schema,
                on_failure=ctx.wake_relay,
                connected=lambda: bus.connected,
                hold=settings.consistency_timeout_seconds,
            )
            db.publish_immediately(ctx.publisher)
            if subscriptions and settings.catch_up:
                ctx.catch_up = CatchUp.for_consumer(
                    bus.js,
                    definition.source,
                    [sub.stream for sub in subscriptions],
                    timeout=settings.consistency_timeout_seconds,
                    max_waiters=settings.consistency_max_waiters,
                )
                stack.push_async_callback(ctx.catch_up.close)
            if bootstrap is not None:
                ctx.runtime = await stack.enter_async_context(bootstrap(ctx))
            tasks: list[asyncio.Task[None]] = [
                _spawn("outbox-marker", functools.partial(ctx.publisher.run, db.reading))
            ]
            if settings.run_workers:
                ctx.relay = OutboxRelay(
                    db,
                    bus.js,
                    batch_size=settings.relay_batch_size,
                    application_name=f"{definition.name}:{settings.instance_id}:relay",
                    grace=IMMEDIATE_GRACE,
                )
                tasks.append(_spawn("outbox-relay", ctx.relay.run))
                for sub in subscriptions:
                    runner = ConsumerRunner(
                        consumer=definition.source,
                        db=db,
                        js=bus.js,
                        subscription=sub,
                        max_deliver=settings.consumer_max_deliver,
                        ack_wait=settings.consumer_ack_wait_seconds,
                        catch_up=ctx.catch_up,
                    )
                    await runner.provision()
                    ctx.consumers.append(runner)
                    tasks.append(_spawn(f"consumer-{sub.stream}", runner.run))
                if subscriptions:
                    tasks.append(
                        _spawn("inbox-purge", functools.partial(purge_inbox_periodically, db))
                    )
                for name, worker in workers:
                    tasks.append(_spawn(name, _bind(worker, ctx)))
            observed = ServiceState(
                db, publisher=ctx.publisher, catch_up=ctx.catch_up, consumers=ctx.consumers
            )
            stack.callback(register(observed))
            tasks.append(
                _spawn(
                    "metrics-sampler",
                    functools.partial(
                        sample_periodically, observed, bus.js, settings.metrics_interval_seconds
                    ),
                )
            )
            # Everything built at start-up lives as long as the process: out of the collector's
            # sight, a full collection under load no longer walks it.
            gc.freeze()
            slot.catch_up = ctx.catch_up
            try:
                yield
            finally:
                slot.catch_up = None
                await cancel_and_wait(tasks)
                shutdown_tracing()

    deps: dict[str, Provide] = {
        "principal": Provide(provide_principal),
        "db": Provide(_provide_db, sync_to_thread=False),
    }
    deps.update(dependencies or {})
    app = Litestar(
        route_handlers=[HealthController, serve_openapi, serve_metrics, *route_handlers],
        lifespan=[lifespan],
        exception_handlers=exception_handlers(),
        dependencies=deps,
        openapi_config=openapi_config(definition),
        plugins=[
            OpenTelemetryPlugin(
                OpenTelemetryConfig(
                    tracer_provider=tracer_provider,
                    # RED metrics are recorded for every request by the access layer; the
                    # tracing middleware's own would cover sampled requests only.
                    meter_provider=NoOpMeterProvider(),
                    exclude=["/health/", "/metrics"],
                    exclude_spans=["receive", "send"],
                    middleware_class=head_sampled_tracing(settings.otel_sample_ratio),
                )
            )
        ],
        # The body guard is outermost: a hostile body is refused before anything waits on it.
        middleware=[
            DefineMiddleware(BodyGuard, max_body_bytes=settings.max_body_bytes),
            DefineMiddleware(ConsistencyMiddleware, slot=slot),
        ],
        request_max_body_size=settings.max_body_bytes,
        cors_config=cors_config(settings.cors_origins),
        signature_namespace={"Principal": Principal, "Database": Database, "Request": Request},
        # Logging is ``setup_logging``'s (JSON or text, with trace ids): Litestar's default
        # configuration would replace the root logger's handler with its own.
        logging_config=None,
        debug=False,
    )
    app.state.verifier = verifier
    app.state.definition = definition
    # Outermost, around tracing, CORS and the error handlers: every answer gets the request id
    # (and, with ACCESS_LOG on, its log line), an unknown route or a refused preflight included.
    app.asgi_handler = RequestLog(
        app.asgi_handler,
        log=settings.access_log,
        fmt=settings.log_format,
        metrics=HttpServerMetrics(),
    )
    return app


def _provide_db(state: State) -> Database:
    db: Database = state.db
    return db


def _bind(worker: Worker, ctx: ServiceContext[Any]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await worker(ctx)

    return run


def _spawn(name: str, run: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
    return asyncio.create_task(supervise(name, run), name=name)
