"""A fast route (``request`` only, inputs declared with ``chassis.fastroute``) refuses bad input
with the very answer of a twin declaring the same inputs as ordinary handler arguments, and its
OpenAPI documents the same parameters and body (unit: an in-process app, no I/O)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
import pytest
from litestar import Litestar, Request, get, post
from litestar.middleware.base import DefineMiddleware
from litestar.params import HeaderParameter, JSONBody, QueryParameter
from litestar.testing import AsyncTestClient

from coursemesh.chassis.edge import BodyGuard
from coursemesh.chassis.errors import exception_handlers
from coursemesh.chassis.fastroute import FastRoute

ZoneQuery = Annotated[str | None, QueryParameter(name="tz", max_length=8, description="Zone")]
ZoneHeader = Annotated[str | None, HeaderParameter(name="X-Timezone", max_length=8)]
Size = Annotated[int, QueryParameter(ge=1, le=5, description="How many")]
Mode = Annotated[str, QueryParameter(name="mode", min_length=2)]


class Zone(msgspec.Struct, frozen=True, kw_only=True):
    """The player's parameters."""

    tz: ZoneQuery = None
    x_timezone: ZoneHeader = None


class Listing(msgspec.Struct, frozen=True, kw_only=True):
    """Parameters of another shape: converted, bounded, required."""

    mode: Mode
    size: Size = 3


class Course(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    course_id: str
    checksum: Annotated[str, msgspec.Meta(max_length=4)]


class Handshake(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    """A handshake-like body: required, bounded, nested."""

    client_version: Annotated[int, msgspec.Meta(ge=1)]
    courses: list[Course] = []


ZONE = FastRoute(params=Zone)
LISTING = FastRoute(params=Listing)
HANDSHAKE = FastRoute(body=Handshake)


@get("/fast/zone/{course_id:uuid}", **ZONE.route_options())
async def fast_zone(request: Request[Any, Any, Any]) -> dict[str, Any]:
    zone = ZONE.params(request)
    return {"tz": zone.tz, "x_timezone": zone.x_timezone}


@get("/twin/zone/{course_id:uuid}")
async def twin_zone(tz: ZoneQuery = None, x_timezone: ZoneHeader = None) -> dict[str, Any]:
    return {"tz": tz, "x_timezone": x_timezone}


@get("/fast/listing", **LISTING.route_options())
async def fast_listing(request: Request[Any, Any, Any]) -> dict[str, Any]:
    listing = LISTING.params(request)
    return {"size": listing.size, "mode": listing.mode}


@get("/twin/listing")
async def twin_listing(mode: Mode, size: Size = 3) -> dict[str, Any]:
    return {"size": size, "mode": mode}


@post("/fast/handshake", status_code=200, **HANDSHAKE.route_options())
async def fast_handshake(request: Request[Any, Any, Any]) -> Handshake:
    return await HANDSHAKE.body(request)


@post("/twin/handshake", status_code=200)
async def twin_handshake(data: JSONBody[Handshake]) -> Handshake:
    return data


BOTH = FastRoute(params=Zone, body=Handshake)


@post("/fast/both", status_code=200, **BOTH.route_options())
async def fast_both(request: Request[Any, Any, Any]) -> dict[str, Any]:
    zone = BOTH.params(request)
    data = await BOTH.body(request)
    return {"tz": zone.tz, "clientVersion": data.client_version}


@post("/twin/both", status_code=200)
async def twin_both(data: JSONBody[Handshake], tz: ZoneQuery = None) -> dict[str, Any]:
    return {"tz": tz, "clientVersion": data.client_version}


HANDLERS = [
    *(fast_zone, twin_zone, fast_listing, twin_listing),
    *(fast_handshake, twin_handshake, fast_both, twin_both),
]


def _app(*, edge: bool) -> Litestar:
    # Without the edge, the twin's body is Litestar's own decoding; with it, as in a service.
    middleware = [DefineMiddleware(BodyGuard, max_body_bytes=1 << 20)] if edge else []
    return Litestar(
        route_handlers=HANDLERS, exception_handlers=exception_handlers(), middleware=middleware
    )


@pytest.fixture(params=[False, True], ids=["litestar", "edge"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(_app(edge=request.param)) as test_client:
        yield test_client


def _same_answer(fast: Any, twin: Any, fast_path: str, twin_path: str) -> dict[str, Any]:
    assert fast.status_code == twin.status_code
    assert fast.headers["content-type"] == twin.headers["content-type"]
    body, other = fast.json(), twin.json()
    if isinstance(body, dict) and "instance" in body:
        assert body.pop("instance") == fast_path
        assert other.pop("instance") == twin_path
    # Litestar names the path in a missing parameter's message: the twin's is another route.
    text = msgspec.json.encode(body).decode().replace(fast_path, "<path>")
    assert text == msgspec.json.encode(other).decode().replace(twin_path, "<path>")
    return body  # type: ignore[no-any-return]


COURSE = "0195f0a0-0000-7000-8000-000000000002"
LONG = "Europe/Amsterdam"  # 16 characters, the limit is 8

ZONE_CASES: list[tuple[dict[str, Any], int, list[str]]] = [
    ({}, 200, []),
    ({"params": {"tz": "UTC"}}, 200, []),
    ({"headers": {"X-Timezone": "CET"}}, 200, []),
    ({"params": {"tz": ""}}, 200, []),
    ({"params": {"tz": LONG}}, 400, ["$.tz"]),
    ({"headers": {"X-Timezone": LONG}}, 400, ["$.x_timezone"]),
    ({"params": {"tz": LONG}, "headers": {"X-Timezone": LONG}}, 400, ["$.tz", "$.x_timezone"]),
    ({"params": [("tz", LONG), ("tz", "UTC")]}, 200, []),  # the last one wins
    ({"params": [("tz", "UTC"), ("tz", LONG)]}, 400, ["$.tz"]),
    ({"headers": [("X-Timezone", "CET"), ("X-Timezone", LONG)]}, 400, ["$.x_timezone"]),
    ({"params": {"x_timezone": LONG}}, 200, []),  # a header is not read from the query
    ({"params": {"tz": "é" * 9}}, 400, ["$.tz"]),
]


@pytest.mark.parametrize(("kwargs", "status", "paths"), ZONE_CASES)
async def test_fast_parameters_answer_as_declared_ones(
    client: AsyncTestClient[Litestar], kwargs: dict[str, Any], status: int, paths: list[str]
) -> None:
    fast_path, twin_path = f"/fast/zone/{COURSE}", f"/twin/zone/{COURSE}"
    fast = await client.get(fast_path, **kwargs)
    twin = await client.get(twin_path, **kwargs)
    body = _same_answer(fast, twin, fast_path, twin_path)
    assert fast.status_code == status
    if status == 400:
        assert body["code"] == "VALIDATION_FAILED"
        assert [e["path"] for e in body["errors"]] == paths
        assert {e["message"] for e in body["errors"]} == {"Expected `str` of length <= 8"}
        sources = {"$.tz": "query", "$.x_timezone": "header"}
        assert [e["source"] for e in body["errors"]] == [sources[path] for path in paths]


LISTING_CASES: list[tuple[dict[str, Any], int]] = [
    ({"mode": "ab"}, 200),
    ({"mode": "ab", "size": "5"}, 200),
    ({"mode": "ab", "size": "x"}, 400),
    ({"mode": "ab", "size": "9"}, 400),
    ({"mode": "ab", "size": "0"}, 400),
    ({"mode": "ab", "size": ""}, 400),
    ({"mode": "a", "size": "x"}, 400),
    ({"size": "2"}, 400),  # a required parameter missing
    ({}, 400),
]


@pytest.mark.parametrize(("params", "status"), LISTING_CASES)
async def test_fast_parameters_convert_bound_and_require_as_declared_ones(
    client: AsyncTestClient[Litestar], params: dict[str, str], status: int
) -> None:
    fast = await client.get("/fast/listing", params=params)
    twin = await client.get("/twin/listing", params=params)
    body = _same_answer(fast, twin, "/fast/listing", "/twin/listing")
    assert fast.status_code == status
    if status == 200:
        assert body == {"size": int(params.get("size", 3)), "mode": params["mode"]}
    else:
        assert body["code"] == "VALIDATION_FAILED"


BODY_CASES: list[tuple[bytes, str | None]] = [
    (b'{"clientVersion": 2, "courses": [{"courseId": "a", "checksum": "abcd"}]}', None),
    (b'{"clientVersion": 2', "MALFORMED_JSON"),
    (b"not json", "MALFORMED_JSON"),
    (b"[1,", "MALFORMED_JSON"),
    (b'{"clientVersion": "two"}', "VALIDATION_FAILED"),
    (b'{"clientVersion": 0}', "VALIDATION_FAILED"),
    (b'{"clientVersion": null}', "VALIDATION_FAILED"),
    (b"{}", "VALIDATION_FAILED"),  # a required field missing
    (b'{"clientVersion": 1, "extra": true}', "VALIDATION_FAILED"),  # an unknown field
    (b'{"clientVersion": 1, "courses": [{"courseId": "a"}]}', "VALIDATION_FAILED"),
    (b'{"clientVersion": 1, "courses": [{"courseId": 1, "checksum": "x"}]}', "VALIDATION_FAILED"),
    (
        b'{"clientVersion": 1, "courses": [{"courseId": "a", "checksum": "abcde"}]}',
        "VALIDATION_FAILED",
    ),
    (b'{"clientVersion": 1, "courses": {}}', "VALIDATION_FAILED"),
    (b"[]", "VALIDATION_FAILED"),
    (b"null", "VALIDATION_FAILED"),
]


@pytest.mark.parametrize(("raw", "code"), BODY_CASES)
async def test_a_fast_body_answers_as_a_declared_one(
    client: AsyncTestClient[Litestar], raw: bytes, code: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    fast = await client.post("/fast/handshake", content=raw, headers=headers)
    twin = await client.post("/twin/handshake", content=raw, headers=headers)
    body = _same_answer(fast, twin, "/fast/handshake", "/twin/handshake")
    if code is None:
        assert fast.status_code == 200
    else:
        assert (fast.status_code, body["code"]) == (400, code)


async def test_a_fast_body_is_strict_as_a_declared_one_at_the_edge() -> None:
    """At a service's edge a declared body is decoded strictly: so is a fast one."""
    raw = b'{"clientVersion": "2"}'
    async with AsyncTestClient(_app(edge=True)) as client:
        fast = await client.post("/fast/handshake", content=raw)
        twin = await client.post("/twin/handshake", content=raw)
    body = _same_answer(fast, twin, "/fast/handshake", "/twin/handshake")
    assert (fast.status_code, body["errors"][0]["path"]) == (400, "$.clientVersion")


async def test_an_empty_body_is_null_to_a_fast_route() -> None:
    """The one difference, on purpose: Litestar's message for a missing body is its internal
    key (``'data'``); a fast route says what it expected, at the same path."""
    async with AsyncTestClient(_app(edge=True)) as client:
        fast = (await client.post("/fast/handshake", content=b"")).json()
        twin = (await client.post("/twin/handshake", content=b"")).json()
    assert (fast["code"], fast["errors"][0]["path"]) == (twin["code"], twin["errors"][0]["path"])
    assert (fast["errors"][0]["message"], twin["errors"][0]["message"]) == (
        "Expected `object`, got `null`",
        "'data'",
    )


@pytest.mark.parametrize(
    ("params", "raw", "status"),
    [
        ({"tz": "UTC"}, b'{"clientVersion": 3}', 200),
        ({"tz": LONG}, b'{"clientVersion": 3}', 400),
        ({"tz": "UTC"}, b'{"clientVersion": 0}', 400),
        ({"tz": "UTC"}, b'{"clientVersion": 3', 400),
    ],
)
async def test_a_route_declaring_both_answers_as_a_declared_one(
    client: AsyncTestClient[Litestar], params: dict[str, str], raw: bytes, status: int
) -> None:
    fast = await client.post("/fast/both", params=params, content=raw)
    twin = await client.post("/twin/both", params=params, content=raw)
    _same_answer(fast, twin, "/fast/both", "/twin/both")
    assert fast.status_code == status


def _operation(schema: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    operation: dict[str, Any] = schema["paths"][path][method]
    return operation


def test_the_openapi_documents_what_the_fast_route_reads() -> None:
    schema = _app(edge=False).openapi_schema.to_schema()
    fast = _operation(schema, "/fast/zone/{course_id}", "get")
    twin = _operation(schema, "/twin/zone/{course_id}", "get")
    named = {p["name"]: p for p in fast["parameters"]}
    assert set(named) == {"course_id", "tz", "X-Timezone"}
    assert named["tz"]["in"] == "query"
    assert named["X-Timezone"]["in"] == "header"
    by_name = {p["name"]: p for p in twin["parameters"]}
    for name in ("tz", "X-Timezone"):
        assert named[name]["schema"] == by_name[name]["schema"], name
        assert named[name]["required"] is by_name[name]["required"] is False
    assert named["tz"]["description"] == "Zone"

    fast = _operation(schema, "/fast/listing", "get")
    twin = _operation(schema, "/twin/listing", "get")
    named = {p["name"]: p for p in fast["parameters"]}
    by_name = {p["name"]: p for p in twin["parameters"]}
    assert named["mode"]["required"] is by_name["mode"]["required"] is True
    assert named["size"]["schema"] == by_name["size"]["schema"]
    assert named["size"]["required"] is False

    fast = _operation(schema, "/fast/handshake", "post")
    twin = _operation(schema, "/twin/handshake", "post")
    assert fast["requestBody"] == twin["requestBody"]
    assert fast["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Handshake"
    }
    assert "Handshake" in schema["components"]["schemas"]
    assert set(fast["responses"]) == set(twin["responses"])

    fast = _operation(schema, "/fast/both", "post")
    twin = _operation(schema, "/twin/both", "post")
    assert fast["requestBody"] == twin["requestBody"]
    assert [p["name"] for p in fast["parameters"]] == ["tz", "X-Timezone"]


def test_a_declaration_refuses_what_it_cannot_read() -> None:
    class Loose(msgspec.Struct):
        tz: ZoneQuery = None

    class Listed(msgspec.Struct, frozen=True):
        tags: Annotated[list[str], QueryParameter()] = []

    with pytest.raises(TypeError, match="frozen"):
        FastRoute(params=Loose)
    with pytest.raises(TypeError, match="cannot be"):
        FastRoute(params=Listed)


def test_the_hostile_tests_know_a_fast_body_s_fields() -> None:
    """Property-based bodies (``chassis.hostile``) use the declared fields of a fast route's
    body as they do a declared ``data``'s."""
    from coursemesh.chassis.hostile import targets

    found = {str(t): t.fields for t in targets(_app(edge=False), {"course_id": COURSE})}
    assert found["POST /fast/handshake"] == found["POST /twin/handshake"]
    assert found["POST /fast/handshake"]  # the Struct's wire names
