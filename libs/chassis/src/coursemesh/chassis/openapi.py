"""The OpenAPI 3.1 document every service publishes: its HTTP contract.

Litestar generates the paths, parameters, bodies and success responses from the handlers; this
module names and versions the document (``coursemesh <service> API``, the service package's
version), declares the ``bearer`` JWT security scheme on every operation the
:func:`~coursemesh.chassis.auth.authenticated` guard protects, and documents the
``application/problem+json`` answers the chassis error handlers (:mod:`coursemesh.chassis.errors`)
give: one shared ``Problem`` schema, and per operation the statuses it can answer with their
stable ``code`` values.

Every operation gets what the chassis itself can answer:

- ``400`` (``VALIDATION_FAILED``, ``MALFORMED_JSON``, ...) when it takes parameters or a body;
- ``401`` when it is guarded; ``404`` when its path names a resource;
- ``413`` and ``415`` when it takes a body; ``500`` and ``503`` always.

A route that verifies the token itself (``await authenticate(request)``, no guard) says so
with ``opt=SELF_AUTHENTICATED``. A route adds the refusals of its own use case with
:func:`problems` in its ``opt``::

    @post("/organizations/{org_id:uuid}/courses", guards=[authenticated],
          opt=problems(Forbidden, Conflict, (409, "SLUG_TAKEN")))

A route whose answer the client may ask for in another media type as well (an export chosen by
a query parameter) declares it with :func:`also_served_as`, beside the JSON Litestar documents.

A service serves its document at ``/openapi.json`` (and Litestar's ``/schema`` keeps
answering with the same document). :func:`merge_documents` joins several services' documents
into the suite's one contract.
"""

from __future__ import annotations

import copy
import importlib.metadata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
from litestar import Litestar, Request, get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.response import Response
from litestar.routes import HTTPRoute
from litestar.serialization import encode_json

from coursemesh.chassis.auth import authenticated
from coursemesh.chassis.errors import PROBLEM_JSON, DomainError
from coursemesh.chassis.service import ServiceDefinition

#: Where a service serves its document.
OPENAPI_PATH = "/openapi.json"
BEARER = "bearer"
PROBLEM_SCHEMA = "Problem"
PROBLEMS_OPT = "problems"
MEDIA_OPT = "media"
AUTHENTICATES_OPT = "authenticates"
#: The ``opt`` of a route that verifies the bearer token itself (``await authenticate(request)``
#: in a hot handler, without the guard): documented as guarded.
SELF_AUTHENTICATED: dict[str, Any] = {AUTHENTICATES_OPT: True}
_STATE_KEY = "coursemesh_openapi_document"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

#: The codes the chassis answers with, per status (a route's own codes are added to them).
CHASSIS_CODES: dict[int, tuple[str, ...]] = {
    400: ("VALIDATION_FAILED", "MALFORMED_JSON", "JSON_TOO_DEEP", "BAD_REQUEST"),
    401: ("MISSING_TOKEN", "UNAUTHORIZED", "TOKEN_EXPIRED"),
    403: ("FORBIDDEN",),
    404: ("NOT_FOUND",),
    413: ("PAYLOAD_TOO_LARGE",),
    415: ("UNSUPPORTED_MEDIA_TYPE",),
    500: ("INTERNAL_ERROR",),
    503: ("DATABASE_UNAVAILABLE", "CATCHING_UP", "SERVICE_UNAVAILABLE"),
}

_DESCRIPTIONS = {
    400: "The request is invalid: its parameters or body (`errors` lists each field)",
    401: "No valid bearer token (answered with `WWW-Authenticate: Bearer`)",
    403: "The caller may not do this",
    404: "No such resource (or not visible to the caller)",
    409: "The request conflicts with the resource's current state",
    413: "The request body is larger than the service accepts",
    415: "The request body's media type is not accepted",
    422: "The request is well-formed but cannot be carried out",
    429: "Too many requests",
    500: "An unexpected error; the body names the request id and trace id",
    503: "Temporarily unavailable (database away, or catching up with other services): retry",
}

PROBLEM: dict[str, Any] = {
    "type": "object",
    "description": (
        "An RFC 9457 problem detail. `code` is stable and meant for programs; `title` and "
        "`detail` are for humans. A use case may add fields of its own."
    ),
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string", "default": "about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "Stable machine-readable reason"},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The request path"},
        "errors": {
            "type": "array",
            "description": "Each invalid field (400 VALIDATION_FAILED)",
            "items": {
                "type": "object",
                "required": ["path", "message"],
                "properties": {
                    "path": {"type": "string", "description": "JSONPath, e.g. $.dayOffset"},
                    "message": {"type": "string"},
                    "source": {
                        "type": "string",
                        "enum": ["body", "query", "header", "path", "cookie"],
                    },
                },
            },
        },
        "requestId": {"type": ["string", "null"], "description": "Server errors (5xx) only"},
        "traceId": {"type": ["string", "null"], "description": "Server errors (5xx) only"},
    },
    "additionalProperties": True,
}

ProblemDeclaration = type[DomainError] | tuple[int, str]


def problems(*declared: ProblemDeclaration) -> dict[str, Any]:
    """A route's ``opt`` declaring the problem answers of its use case, beyond the chassis's
    own: :class:`DomainError` subclasses (their ``status`` and ``code``) or ``(status, code)``."""
    codes: list[tuple[int, str]] = []
    for item in declared:
        if isinstance(item, tuple):
            codes.append(item)
        else:
            codes.append((item.status, item.code))
    return {PROBLEMS_OPT: tuple(codes)}


def also_served_as(media_type: str, *, status: int = 200) -> dict[str, Any]:
    """A route's ``opt`` declaring one more media type of its ``status`` answer, as text (for
    example ``text/csv`` when ``?format=csv`` asks for an export)."""
    return {MEDIA_OPT: ((status, media_type),)}


def distribution_version(definition: ServiceDefinition[Any]) -> str:
    """The installed version of the service's distribution (``coursemesh-<pkg>``)."""
    name = "coursemesh-" + definition.package.rpartition(".")[2]
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def title_of(definition: ServiceDefinition[Any]) -> str:
    return f"coursemesh {definition.name} API"


class _DocumentJson(JsonRenderPlugin):
    """Litestar's JSON renderer, serving the completed document rather than the raw one."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return self.render_json(request, service_document(request.app))


def openapi_config(definition: ServiceDefinition[Any]) -> OpenAPIConfig:
    """The service's OpenAPI configuration: named and versioned, served under ``/schema``
    (``/schema`` and ``/schema/openapi.json``) as well as at :data:`OPENAPI_PATH`."""
    return OpenAPIConfig(
        title=title_of(definition),
        version=distribution_version(definition),
        description=(
            f"The HTTP contract of the coursemesh {definition.name} service. Clients reach it "
            "through the gateway. Guarded operations need `Authorization: Bearer <JWT>` (RS256, "
            "verified against the identity provider's JWKS); every refusal is "
            "`application/problem+json` with a stable `code`."
        ),
        path="/schema",
        render_plugins=[_DocumentJson(path=["/openapi.json"])],
    )


@get(OPENAPI_PATH, include_in_schema=False, sync_to_thread=False, media_type="application/json")
def serve_openapi(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The service's OpenAPI document."""
    return Response(
        JsonRenderPlugin.render_json(request, service_document(request.app)),
        media_type="application/vnd.oai.openapi+json",
    )


def service_document(app: Litestar) -> dict[str, Any]:
    """The service's completed OpenAPI document (built once, then cached on the app)."""
    cached = app.state.get(_STATE_KEY)
    if isinstance(cached, dict):
        return cached
    # Through JSON and back: examples hold UUIDs and datetimes; the document is plain JSON.
    raw = msgspec.json.decode(encode_json(app.openapi_schema.to_schema()))
    document = complete(app, raw)
    app.state[_STATE_KEY] = document
    return document


def complete(app: Litestar, document: dict[str, Any]) -> dict[str, Any]:
    """Add the security scheme, the ``Problem`` schema and each operation's problem answers."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An RS256 JWT of the identity provider; `sub` is the user",
    }
    components.setdefault("schemas", {})[PROBLEM_SCHEMA] = copy.deepcopy(PROBLEM)
    handlers = _handlers_by_operation(app)
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            handler = handlers.get((path, method.upper()))
            guarded = handler is not None and _is_guarded(handler)
            declared = handler.opt.get(PROBLEMS_OPT, ()) if handler is not None else ()
            _complete_operation(operation, item, guarded=guarded, declared=declared)
            media = handler.opt.get(MEDIA_OPT, ()) if handler is not None else ()
            for status, media_type in media:
                response = operation.setdefault("responses", {}).setdefault(
                    str(status), {"description": "Also served as " + media_type}
                )
                content = response.setdefault("content", {})
                content.setdefault(media_type, {"schema": {"type": "string"}})
    return document


def _handlers_by_operation(app: Litestar) -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = route.path_format or "/"
        for handler in route.route_handlers:
            for method in handler.http_methods:
                found[(path, method)] = handler
    return found


def _is_guarded(handler: Any) -> bool:
    return bool(handler.opt.get(AUTHENTICATES_OPT)) or authenticated in handler.resolve_guards()


def _complete_operation(
    operation: dict[str, Any],
    path_item: Mapping[str, Any],
    *,
    guarded: bool,
    declared: Iterable[tuple[int, str]],
) -> None:
    parameters = [*path_item.get("parameters", ()), *operation.get("parameters", ())]
    has_body = "requestBody" in operation
    in_path = any(p.get("in") == "path" for p in parameters if isinstance(p, dict))
    statuses: dict[int, list[str]] = {}

    def add(status: int, codes: Sequence[str]) -> None:
        known = statuses.setdefault(status, [])
        known.extend(code for code in codes if code not in known)

    if parameters or has_body or "400" in operation.get("responses", {}):
        add(400, CHASSIS_CODES[400] if has_body else ("VALIDATION_FAILED", "BAD_REQUEST"))
    if guarded:
        add(401, CHASSIS_CODES[401])
        operation["security"] = [{BEARER: []}]
    if in_path:
        add(404, CHASSIS_CODES[404])
    if has_body:
        add(413, CHASSIS_CODES[413])
        add(415, CHASSIS_CODES[415])
    for status, code in declared:
        add(status, (code,))
    add(500, CHASSIS_CODES[500])
    add(503, CHASSIS_CODES[503])
    responses = operation.setdefault("responses", {})
    for status in sorted(statuses):
        responses[str(status)] = _problem_response(status, statuses[status])


def _problem_response(status: int, codes: Sequence[str]) -> dict[str, Any]:
    description = _DESCRIPTIONS.get(status, "A refusal")
    return {
        "description": f"{description}. Codes: {', '.join(codes)}",
        "content": {
            PROBLEM_JSON: {
                "schema": {
                    "allOf": [
                        {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"},
                        {
                            "type": "object",
                            "properties": {
                                "status": {"const": status},
                                # Examples, not an enum: a use case may refine a refusal
                                # with a code of its own.
                                "code": {"type": "string", "examples": list(codes)},
                            },
                        },
                    ]
                }
            }
        },
    }


def merge_documents(
    documents: Mapping[str, Mapping[str, Any]],
    *,
    title: str = "coursemesh API",
    version: str = "0.1.0",
    description: str = "",
) -> dict[str, Any]:
    """One document of several services' (``name -> document``): paths must be disjoint;
    component schemas of the same name and different content are prefixed with the service's
    name (``Catalog_Course``), and every reference to them is rewritten."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "servers": [{"url": "/"}],
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {}},
        "tags": [],
    }
    owners: dict[str, str] = {}
    seen: dict[str, Any] = {}
    for name, original in documents.items():
        document = copy.deepcopy(dict(original))
        renames: dict[str, str] = {}
        schemas = document.get("components", {}).get("schemas", {})
        for schema_name, schema in schemas.items():
            if schema_name in seen and seen[schema_name] != schema:
                renames[schema_name] = f"{_prefix(name)}_{schema_name}"
        if renames:
            document = _rename_refs(document, renames)
            schemas = document.get("components", {}).get("schemas", {})
        for schema_name, schema in schemas.items():
            final = renames.get(schema_name, schema_name)
            seen.setdefault(schema_name, schema)
            merged["components"]["schemas"][final] = schema
        merged["components"]["securitySchemes"].update(
            document.get("components", {}).get("securitySchemes", {})
        )
        for path, item in document.get("paths", {}).items():
            if path in owners:
                raise ValueError(f"{path} is served by both {owners[path]} and {name}")
            owners[path] = name
            merged["paths"][path] = item
        known_tags = {tag["name"] for tag in merged["tags"]}
        for tag in document.get("tags", ()):
            if tag.get("name") not in known_tags:
                merged["tags"].append(tag)
    merged["paths"] = dict(sorted(merged["paths"].items()))
    merged["components"]["schemas"] = dict(sorted(merged["components"]["schemas"].items()))
    if not merged["tags"]:
        del merged["tags"]
    return merged


def _prefix(service: str) -> str:
    return "".join(part.capitalize() for part in service.replace("_", "-").split("-"))


def _rename_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                base, _, ref_name = value.rpartition("/")
                if base == "#/components/schemas" and ref_name in renames:
                    value = f"{base}/{renames[ref_name]}"
            out[key] = _rename_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rename_refs(item, renames) for item in node]
    return node


__all__ = [
    "BEARER",
    "CHASSIS_CODES",
    "OPENAPI_PATH",
    "PROBLEM",
    "PROBLEM_SCHEMA",
    "SELF_AUTHENTICATED",
    "complete",
    "distribution_version",
    "merge_documents",
    "openapi_config",
    "problems",
    "serve_openapi",
    "service_document",
]
