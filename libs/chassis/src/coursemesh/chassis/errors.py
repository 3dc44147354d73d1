"""Domain errors and their RFC 9457 problem+json rendering.

Use cases raise :class:`DomainError` subclasses with a stable ``code``; the HTTP layer turns them
(and framework errors) into ``application/problem+json``. A client never sees a stack trace; a
server error's body (5xx) names the request's ``requestId`` and ``traceId`` instead, which its
log lines carry too.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    SerializationException,
    ValidationException,
)
from litestar.exceptions import (
    NotFoundException as RouteNotFoundException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from coursemesh.chassis.access import current_trace_id, request_id

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("coursemesh.errors")


class DomainError(Exception):
    """A refusal the client can understand. ``code`` is stable; ``detail`` is for humans."""

    status: int = 400
    code: str = "BAD_REQUEST"
    title: str = "Bad Request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        self.extra = extra or {}


class BadRequest(DomainError):
    status, code, title = 400, "BAD_REQUEST", "Bad Request"


class Unauthorized(DomainError):
    status, code, title = 401, "UNAUTHORIZED", "Unauthorized"


class Forbidden(DomainError):
    status, code, title = 403, "FORBIDDEN", "Forbidden"


class NotFound(DomainError):
    status, code, title = 404, "NOT_FOUND", "Not Found"


class Conflict(DomainError):
    status, code, title = 409, "CONFLICT", "Conflict"


class Unprocessable(DomainError):
    status, code, title = 422, "UNPROCESSABLE", "Unprocessable Content"


class TooManyRequests(DomainError):
    status, code, title = 429, "TOO_MANY_REQUESTS", "Too Many Requests"


class FieldError(msgspec.Struct, frozen=True):
    path: str
    message: str


def problem(
    status: int,
    title: str,
    code: str,
    detail: str | None = None,
    instance: str | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "code": code}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return Response(body, status_code=status, media_type=PROBLEM_JSON)


_PATH = re.compile(r"at `(\$[^`]*)`")


def _field_errors(exc: ValidationException) -> list[dict[str, str]]:
    """Turn Litestar's msgspec validation messages into ``{path, message}`` pairs, the path a
    JSONPath into the request body (``$.dayOffset``, ``$.items[0].workoutId``)."""
    raw = exc.extra if isinstance(exc.extra, list) else []
    errors: list[dict[str, str]] = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", ""))
        key = str(item.get("key") or "")
        errors.append(
            {
                "path": _error_path(message, key),
                "message": _PATH.sub("", message).rstrip(" -"),
                "source": _source(item.get("source", "body")),
            }
        )
    if not errors and exc.detail:
        errors.append({"path": _error_path(exc.detail, ""), "message": exc.detail})
    return errors


def _source(source: object) -> str:
    """Where the value came from: ``body``, ``query``, ``header``, ``path``, ``cookie`` (Litestar
    gives a ``ParamType``, whose ``str()`` would be ``ParamType.QUERY``)."""
    return str(getattr(source, "value", source))


_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]*)`")
_MISSING_FIELD = re.compile(r"missing required field `([^`]*)`")


def _error_path(message: str, key: str) -> str:
    match = _PATH.search(message)
    if match:
        base = match.group(1)
    elif key.startswith("$"):
        base = key
    else:
        base = f"$.{key}" if key and key != "data" else "$"
    # msgspec reports a missing or unknown field at its parent object: point at the field.
    named = _UNKNOWN_FIELD.search(message) or _MISSING_FIELD.search(message)
    return f"{base}.{named.group(1)}" if named else base


#: Statuses of a refusal that may rest on another service's data: such an answer is given only
#: once the service has caught up with its streams (:mod:`coursemesh.chassis.consistency`).
NEGATIVE_STATUSES = frozenset({403, 404, 409, 410, 422})
NEGATIVE_STATE_KEY = "coursemesh.negative"


def mark_negative(scope: Any) -> None:
    """Say that the answer being built is negative (e.g. an empty list that another service's
    events fill): it is given only after catching up, as a 404 from a use case is."""
    scope.setdefault("state", {})[NEGATIVE_STATE_KEY] = True


def is_negative(scope: Any) -> bool:
    return bool(scope.get("state", {}).get(NEGATIVE_STATE_KEY))


def _domain_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    if exc.status in NEGATIVE_STATUSES:
        mark_negative(request.scope)
    return problem(exc.status, exc.title, exc.code, exc.detail, request.url.path, **exc.extra)


def _validation_handler(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    return problem(
        400,
        "Bad Request",
        "VALIDATION_FAILED",
        "The request is invalid",
        request.url.path,
        errors=_field_errors(exc),
    )


_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
}


def _ids(request: Request[Any, Any, Any]) -> dict[str, str | None]:
    """The request's id and trace id, as a server error's body names them: what an operator
    is given to find its log lines and its trace."""
    return {"requestId": request_id(request.scope), "traceId": current_trace_id()}


def _http_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    title = _title(status)
    code = _HTTP_CODES.get(status, "HTTP_ERROR")
    if status == 400 and isinstance(exc.__cause__, SerializationException):
        return problem(
            400, title, "MALFORMED_JSON", "The request body is not valid JSON", request.url.path
        )
    detail = exc.detail if exc.detail and exc.detail != title else None
    ids = _ids(request) if status >= 500 else {}
    if ids:
        log.error(
            "http error %s on %s: %s (request_id=%s trace_id=%s)",
            status,
            request.url.path,
            exc.detail,
            ids["requestId"],
            ids["traceId"],
            extra={"request_id": ids["requestId"]},
        )
    return problem(status, title, code, detail, request.url.path, **ids)


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


#: What a ``503 DATABASE_UNAVAILABLE`` tells the client to wait before retrying.
DATABASE_RETRY_AFTER_SECONDS = 2


def _database_unavailable(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[dict[str, Any]]:
    # Expected while the database is away and gone once it is back: one line, no stack trace.
    reason = (str(exc).splitlines() or [""])[0][:200]
    ids = _ids(request)
    log.warning(
        "database unavailable on %s %s: %s: %s (request_id=%s)",
        request.method,
        request.url.path,
        type(exc).__name__,
        reason,
        ids["requestId"],
        extra={"request_id": ids["requestId"]},
    )
    response = problem(
        503,
        "Service Unavailable",
        "DATABASE_UNAVAILABLE",
        "The database cannot be reached right now; retry later.",
        request.url.path,
        **ids,
    )
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def _unexpected_handler(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[dict[str, Any]]:
    # Imported here: the domain layer imports this module and needs no database driver.
    from coursemesh.chassis.db import is_connection_failure

    if is_connection_failure(exc):
        return _database_unavailable(request, exc)
    ids = _ids(request)
    log.exception(
        "unhandled error on %s %s (request_id=%s trace_id=%s)",
        request.method,
        request.url.path,
        ids["requestId"],
        ids["traceId"],
        exc_info=exc,
        extra={"request_id": ids["requestId"]},
    )
    return problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "Internal Server Error",
        "INTERNAL_ERROR",
        "An unexpected error occurred; it has been logged.",
        request.url.path,
        **ids,
    )


def _not_authorized(
    request: Request[Any, Any, Any], exc: NotAuthorizedException
) -> Response[dict[str, Any]]:
    response = problem(401, "Unauthorized", "UNAUTHORIZED", exc.detail, request.url.path)
    response.headers["WWW-Authenticate"] = 'Bearer realm="coursemesh"'
    return response


def _permission_denied(
    request: Request[Any, Any, Any], exc: PermissionDeniedException
) -> Response[dict[str, Any]]:
    return problem(403, "Forbidden", "FORBIDDEN", exc.detail, request.url.path)


def _route_not_found(
    request: Request[Any, Any, Any], exc: RouteNotFoundException
) -> Response[dict[str, Any]]:
    return problem(404, "Not Found", "NOT_FOUND", None, request.url.path)


def exception_handlers() -> ExceptionHandlersMap:
    return {
        DomainError: _domain_handler,
        ValidationException: _validation_handler,
        NotAuthorizedException: _not_authorized,
        PermissionDeniedException: _permission_denied,
        RouteNotFoundException: _route_not_found,
        HTTPException: _http_handler,
        Exception: _unexpected_handler,
    }


__all__ = [
    "DATABASE_RETRY_AFTER_SECONDS",
    "PROBLEM_JSON",
    "BadRequest",
    "Conflict",
    "DomainError",
    "FieldError",
    "Forbidden",
    "MediaType",
    "NotFound",
    "TooManyRequests",
    "Unauthorized",
    "Unprocessable",
    "exception_handlers",
    "is_negative",
    "mark_negative",
    "problem",
]
