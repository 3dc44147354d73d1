"""OpenTelemetry traces (HTTP, SQL, publish, consume) and JSON logs that carry trace ids."""

from __future__ import annotations

import json
import logging
import random
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litestar.middleware.base import DefineMiddleware
from litestar.plugins import opentelemetry as litestar_otel
from litestar.plugins.opentelemetry import OpenTelemetryInstrumentationMiddleware
from litestar.types import Receive, Scope, Send
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from pythonjsonlogger.json import JsonFormatter


class JsonLinesSpanExporter(SpanExporter):
    """Writes one JSON object per finished span to a file (the local, file-based trace sink)."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [json.dumps(span_to_dict(s), separators=(",", ":")) for s in spans]
        with self._lock, self._path.open("a", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    parent = span.parent
    return {
        "trace_id": f"{ctx.trace_id:032x}" if ctx else None,
        "span_id": f"{ctx.span_id:016x}" if ctx else None,
        "parent_span_id": f"{parent.span_id:016x}" if parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": span.resource.attributes.get("service.name"),
        "instance": span.resource.attributes.get("service.instance.id"),
        "start": span.start_time,
        "end": span.end_time,
        "status": span.status.status_code.name,
        "attributes": {k: _jsonable(v) for k, v in (span.attributes or {}).items()},
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Sequence):
        return [_jsonable(v) for v in value]
    return str(value)


_provider: TracerProvider | None = None
_ids = RandomIdGenerator()


def unsampled_context() -> otel_context.Context:
    """A context whose current span is a fresh, valid, *not sampled* one.

    Work done under it (SQL, publishes, and, through the ``traceparent`` the envelope carries,
    the consumers in other services) is not recorded, while logs still get a trace id.
    Instrumentations (asyncpg's) are suppressed in it too: they would build a span per
    statement only to drop it, a noticeable part of a free checkout's CPU.
    """
    span_context = trace.SpanContext(
        trace_id=_ids.generate_trace_id(),
        span_id=_ids.generate_span_id(),
        is_remote=False,
        trace_flags=trace.TraceFlags(trace.TraceFlags.DEFAULT),
    )
    unsampled = trace.set_span_in_context(trace.NonRecordingSpan(span_context))
    return otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True, unsampled)


def _has_traceparent(scope: Scope) -> bool:
    return any(name == b"traceparent" for name, _ in scope.get("headers", ()))


def head_sampled_tracing(ratio: float) -> type[OpenTelemetryInstrumentationMiddleware]:
    """Litestar's OpenTelemetry middleware, entered for a ``ratio`` of the requests only.

    The decision is made once, at the edge: a request that brings a ``traceparent`` follows
    its caller's decision (the provider's sampler is parent-based); any other request is
    traced with probability ``ratio``. An untraced request skips the instrumentation entirely
    (the ASGI instrumentation alone costs a small request most of its throughput) and runs
    under :func:`unsampled_context`, so nothing below it is recorded.
    """

    class HeadSampledTracingMiddleware(OpenTelemetryInstrumentationMiddleware):
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if ratio >= 1.0 or _has_traceparent(scope) or random.random() < ratio:
                await super().__call__(scope, receive, send)
                return
            token = otel_context.attach(unsampled_context())
            try:
                await self.app(scope, receive, send)
            finally:
                otel_context.detach(token)

    return HeadSampledTracingMiddleware


class OpenTelemetryPlugin(litestar_otel.OpenTelemetryPlugin):
    """Litestar's plugin, honouring ``OpenTelemetryConfig.middleware_class``: the stock plugin
    (Litestar 2.x) always installs the default middleware class and ignores that field.

    The class keeps the stock name on purpose: the app finds the plugin that wraps it by
    class name (``app.plugins.get("OpenTelemetryPlugin")``).
    """

    @property
    def middleware(self) -> DefineMiddleware:
        return self.config.middleware


def setup_tracing(
    *,
    service: str,
    instance_id: str,
    exporter: str,
    file: str | None = None,
    endpoint: str | None = None,
) -> TracerProvider:
    """Install the global tracer provider once per process (idempotent)."""
    global _provider
    if _provider is not None:
        return _provider
    resource = Resource.create({"service.name": service, "service.instance.id": instance_id})
    provider = TracerProvider(resource=resource)
    span_exporter: SpanExporter | None = None
    if exporter == "console":
        span_exporter = ConsoleSpanExporter(out=sys.stderr)
    elif exporter == "file":
        span_exporter = JsonLinesSpanExporter(file or f"{service}-spans.jsonl")
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
    if span_exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(span_exporter, schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.force_flush()


class _TraceContextFilter(logging.Filter):
    def __init__(self, service: str, instance_id: str) -> None:
        super().__init__()
        self._service = service
        self._instance = instance_id

    def filter(self, record: logging.LogRecord) -> bool:
        # A record written after its request's span ended names that span's trace itself
        # (``extra={"trace_id": ...}``, as access log lines do).
        if "trace_id" not in record.__dict__:
            ctx = trace.get_current_span().get_span_context()
            record.trace_id = f"{ctx.trace_id:032x}" if ctx.is_valid else None
            record.span_id = f"{ctx.span_id:016x}" if ctx.is_valid else None
        elif "span_id" not in record.__dict__:
            record.span_id = None
        record.service = self._service
        record.instance = self._instance
        return True


def setup_logging(*, service: str, instance_id: str, level: str, fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_TraceContextFilter(service, instance_id))
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(instance)s"
                " %(trace_id)s %(span_id)s",
                rename_fields={"levelname": "level", "asctime": "time"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(service)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.getLogger("nats").setLevel(logging.WARNING)
