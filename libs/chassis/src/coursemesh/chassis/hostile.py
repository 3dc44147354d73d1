"""Hostile input thrown at every route of a service: support for its tests.

Needs ``hypothesis`` (a development dependency). A service's test lists its routes with
:func:`targets` (path parameters filled with ids of a seeded world, so requests reach the
handlers), then for each request asserts what every route owes a client: no 5xx, whatever
the body, and a refusal that changed nothing (:func:`database_digest` before and after).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from coursemesh.chassis.db import Database
from coursemesh.chassis.fastroute import declared_body

BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")

#: Bodies each route must refuse cleanly: too deep, not UTF-8, text PostgreSQL refuses,
#: numbers past any column, types that only look right.
DEEP: tuple[bytes, ...] = (
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
)
HOSTILE_BODIES: tuple[bytes, ...] = (
    *DEEP,
    b"\xff\xfe\x00garbage",
    b'{"name": "caf\xe9", "title": "\xc3\x28"}',
    b'{"name": "a\\u0000b", "title": "a\\u0000b", "userId": "\\u0000"}',
    b'{"priceInCents": 9223372036854775808, "dayOffset": 9223372036854775808}',
    b'{"priceInCents": "100", "durationDays": "3", "dayOffset": 1e2}',
    b'{"\\u0000": 1}',
    b'{"\xff": 1}',
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"1e999999",
)

_PARAM = re.compile(r"\{(\w+):?(\w*)\}")


@dataclass(frozen=True)
class Target:
    """One route, ready to be called: concrete path, and the names its body uses."""

    method: str
    path: str
    fields: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def targets(app: Litestar, values: Mapping[str, str]) -> list[Target]:
    """Every route of ``app`` that takes a body, its path parameters taken from ``values`` by
    name (a random UUID, or 1, for a name not given)."""
    found: list[Target] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods):
                if method not in BODY_METHODS or route.path.startswith("/schema"):
                    continue
                path = _PARAM.sub(lambda m: _value(m, values), route.path)
                found.append(Target(method, path, _field_names(handler)))
    return found


def _value(match: re.Match[str], values: Mapping[str, str]) -> str:
    name, kind = match.group(1), match.group(2)
    if name in values:
        return values[name]
    return "1" if kind == "int" else str(uuid.uuid4())


def _field_names(handler: Any) -> tuple[str, ...]:
    if not isinstance(handler, HTTPRouteHandler):
        return ()
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is not None:
        annotation = data.annotation
    else:
        annotation = declared_body(handler.dependencies)
        if annotation is None:
            return ()
    names: list[str] = []
    for kind in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            names.extend(f.encode_name for f in msgspec.structs.fields(kind))
    return tuple(names)


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**31 - 2, max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["\x00", "a\x00b", "", " ", "2026-13-45", str(uuid.uuid4())])
)


def bodies(target: Target) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, arbitrary JSON, and JSON objects aimed at the route's own fields."""
    keys = st.sampled_from(target.fields) | st.text(max_size=12) if target.fields else st.text()
    documents = st.recursive(
        _SCALARS,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6)
        ),
        max_leaves=20,
    )
    return (
        st.binary(max_size=200)
        | documents.map(lambda d: json.dumps(d).encode())
        | st.sampled_from(HOSTILE_BODIES)
    )


async def database_digest(db: Database) -> str:
    """One hash of every row of every table in the service's schema, less the outbox's
    delivery bookkeeping (which a publish after an earlier answer may still set)."""
    async with db.engine.connect() as conn:
        tables = (
            await conn.execute(
                sa.text(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = :schema AND table_type = 'BASE TABLE'"
                    " ORDER BY table_name"
                ),
                {"schema": db.schema},
            )
        ).scalars()
        parts = []
        for table in tables:
            rows = f"{_quoted(db.schema)}.{_quoted(table)}"
            row = "to_jsonb(t)" + (_BOOKKEEPING if table == "outbox" else "")
            digest = await conn.scalar(
                sa.text(
                    "SELECT md5(coalesce(string_agg(r, '|' ORDER BY r), ''))"
                    f" FROM (SELECT ({row})::text AS r FROM {rows} t) s"
                )
            )
            parts.append(f"{table}:{digest}")
    return ";".join(parts)


_BOOKKEEPING = " - 'published_at' - 'attempts' - 'last_error'"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def assert_survives(
    client: Any, db: Database, target: Target, body: bytes, headers: Mapping[str, str]
) -> int:
    """Send ``body`` to ``target``: never a 5xx, and a refusal leaves the database as it was.
    Returns the status."""
    before = await database_digest(db)
    response = await client.request(
        target.method,
        target.path,
        content=body,
        headers={**headers, "content-type": "application/json"},
    )
    status: int = response.status_code
    assert status < 500, f"{target} answered {status} to {body[:120]!r}: {response.text[:300]}"
    if status >= 400:
        assert await database_digest(db) == before, f"{target} refused {body[:120]!r} but wrote"
        assert response.headers["content-type"].startswith("application/problem+json")
    return status


async def assert_refuses_hostile_bodies(
    client: Any, db: Database, routes: list[Target], headers: Mapping[str, str]
) -> None:
    """Every body of :data:`HOSTILE_BODIES` at every route; the deep ones are refused 400
    wherever they go."""
    for target in routes:
        for body in HOSTILE_BODIES:
            status = await assert_survives(client, db, target, body, headers)
            if body in DEEP:
                assert status == 400, f"{target} answered {status} to a deep body"


#: Settings of the property-based test each service runs over its routes.
PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def assert_draw_survives(
    data: st.DataObject,
    client: Any,
    db: Database,
    routes: list[Target],
    headers: Mapping[str, str],
) -> None:
    """One example of the property: a drawn route, a drawn body, and what every route owes."""
    target = data.draw(st.sampled_from(routes), label="route")
    body = data.draw(bodies(target), label="body")
    await assert_survives(client, db, target, body, headers)
