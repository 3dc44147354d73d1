"""Request ids, access logs and CORS: the HTTP concerns every service shares at its very edge.

:class:`RequestLog` is the outermost layer of every service's app (outside tracing, CORS and
the error handlers, so it sees every answer, a refused preflight or an unknown route included):

- the request id is the ``X-Request-ID`` the gateway sets (the client's own, else a fresh one);
  a request that reaches the service without one (or with one longer than 128 characters or
  holding control characters) gets a fresh UUID. It is kept in the ASGI scope
  (:func:`request_id`) and returned in the response's ``X-Request-ID`` header;
- with ``ACCESS_LOG`` on (the default), one ``INFO`` line per request on the logger
  ``coursemesh.access``, through the service's logging setup (JSON or text): method, path
  (never the query string, which may carry tokens), status, duration in milliseconds, request
  id and trace id. Health probes (``/health/...``) are logged at ``DEBUG``.

With metrics on, each request is also recorded in the RED histogram
(:class:`~coursemesh.chassis.metrics.HttpServerMetrics`), by route template.

The work per request is a header scan, one closure, two clock reads, the log call itself and
one histogram record.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from litestar.config.cors import CORSConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import trace

from coursemesh.chassis.metrics import HttpServerMetrics

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_KEY = "coursemesh.request_id"
_HEADER = REQUEST_ID_HEADER.lower().encode()
_MAX_REQUEST_ID = 128
_QUIET_PREFIX = "/health/"

access_log = logging.getLogger("coursemesh.access")

#: Request headers a browser client may send (beyond the CORS-safelisted ones).
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Request-ID",
    "Consistency-Token",
    "X-Timezone",
    "If-None-Match",
    "traceparent",
    "tracestate",
)
#: Response headers a browser client may read (beyond the CORS-safelisted ones).
CORS_EXPOSED_HEADERS = (
    "X-Request-ID",
    "Consistency-Token",
    "ETag",
    "Location",
    "Retry-After",
    "WWW-Authenticate",
    "Content-Disposition",
)
CORS_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def cors_config(origins: tuple[str, ...], max_age: int = 600) -> CORSConfig | None:
    """Litestar's CORS for ``origins`` (``*``: any), or None (CORS off) when there are none."""
    if not origins:
        return None
    return CORSConfig(
        allow_origins=list(origins),
        allow_methods=list(CORS_METHODS),  # type: ignore[arg-type]
        allow_headers=list(CORS_REQUEST_HEADERS),
        expose_headers=list(CORS_EXPOSED_HEADERS),
        max_age=max_age,
    )


def request_id(scope: Mapping[str, Any]) -> str | None:
    """The id of the request being served (set by :class:`RequestLog`)."""
    state: Mapping[str, Any] = scope.get("state") or {}
    value: str | None = state.get(REQUEST_ID_KEY)
    return value


def current_trace_id() -> str | None:
    """The trace id of the current span (sampled or not), as 32 hex digits; None outside one."""
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None


def _incoming(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == _HEADER:
            text = value.decode("latin-1")
            if 0 < len(text) <= _MAX_REQUEST_ID and text.isprintable():
                return text
            return None
    return None


class RequestLog:
    """ASGI middleware giving every HTTP request an id and, if ``log``, an access log line."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        log: bool = True,
        fmt: str = "json",
        metrics: HttpServerMetrics | None = None,
    ) -> None:
        self.app = app
        self.log = log
        self.metrics = metrics
        # JSON lines carry the ids as fields; text lines in the message too.
        self._json = fmt == "json"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = _incoming(scope) or str(uuid.uuid4())
        scope.setdefault("state", {})[REQUEST_ID_KEY] = rid
        header = (_HEADER, rid.encode("latin-1"))
        log = self.log
        status = 500  # what the client sees if nothing was sent: the server closes on it
        trace_id: str | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, trace_id
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
                if log:  # still inside the request's span here
                    trace_id = current_trace_id()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.metrics is not None:
                # The route's template, as routing left it in the scope: never the raw path.
                route: str | None = scope.get("path_template")
                method_name: str = scope["method"]  # type: ignore[typeddict-item]
                self.metrics.record(method_name, route, status, time.perf_counter() - start)
            if log:
                path = scope["path"]
                level = logging.DEBUG if path.startswith(_QUIET_PREFIX) else logging.INFO
                if access_log.isEnabledFor(level):
                    method: str = scope["method"]  # type: ignore[typeddict-item]
                    self._write(level, method, path, status, start, rid, trace_id)

    def _write(
        self,
        level: int,
        method: str,
        path: str,
        status: int,
        start: float,
        rid: str,
        trace_id: str | None,
    ) -> None:
        duration_ms = round((time.perf_counter() - start) * 1000, 2)
        args: tuple[object, ...]
        if self._json:
            template, args = "%s %s %d %.1fms", (method, path, status, duration_ms)
        else:
            template = "%s %s %d %.1fms request_id=%s trace_id=%s"
            args = (method, path, status, duration_ms, rid, trace_id)
        access_log.log(
            level,
            template,
            *args,
            extra={
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "request_id": rid,
                "trace_id": trace_id,
            },
        )
