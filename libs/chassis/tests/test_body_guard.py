"""The body guard: depth before decoding, text PostgreSQL can store, strict types, size."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar, Request, post
from litestar.middleware.base import DefineMiddleware
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient

from coursemesh.chassis.body import decode_json_body
from coursemesh.chassis.edge import BodyGuard, exceeds_depth, json_depth, text_errors
from coursemesh.chassis.errors import exception_handlers


class Thing(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: str
    price_in_cents: int
    public: bool = False
    tags: list[str] = []


RECEIVED: list[Any] = []
CAP = 1_048_576


@post("/things", status_code=201)
async def create_thing(data: JSONBody[Thing]) -> dict[str, Any]:
    RECEIVED.append(data)
    return {"name": data.name, "priceInCents": data.price_in_cents}


@post("/maybe", status_code=200)
async def maybe(data: JSONBody[Thing | None] = None) -> dict[str, Any]:
    return {"given": data is not None}


_raw_decoder = msgspec.json.Decoder(Thing)


@post("/raw", status_code=200)
async def raw(request: Request[Any, Any, Any]) -> dict[str, Any]:
    thing = decode_json_body(await request.body(), _raw_decoder)
    return {"name": thing.name}


@post("/form", status_code=200)
async def form(request: Request[Any, Any, Any]) -> dict[str, int]:
    return {"bytes": len(await request.body())}


@pytest.fixture
async def client() -> AsyncIterator[AsyncTestClient[Litestar]]:
    RECEIVED.clear()
    app = Litestar(
        route_handlers=[create_thing, maybe, raw, form],
        exception_handlers=exception_handlers(),
        middleware=[DefineMiddleware(BodyGuard, max_body_bytes=CAP)],
        request_max_body_size=CAP,
    )
    async with AsyncTestClient(app) as test_client:
        yield test_client


def nested(depth: int, opener: str = "[", closer: str = "]") -> bytes:
    return (opener * depth + closer * depth).encode()


def deep_object(depth: int) -> bytes:
    return ('{"a":' * depth + "1" + "}" * depth).encode()


# -- the scanner ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"1", 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[{{{{"}', 1),  # brackets inside a string do not nest
        (b'{"a": "quote \\" [[[[ still a string"}', 1),
        (b'{"a": "backslash \\\\", "b": [[1]]}', 3),  # an escaped backslash ends no string
        (b'["\\\\\\"[[["]', 1),
        (nested(100_000), 100_000),
    ],
)
def test_json_depth_ignores_brackets_in_strings(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth


JSON_DOCUMENTS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(JSON_DOCUMENTS)
@settings(max_examples=200, deadline=None)
def test_json_depth_matches_the_document(document: Any) -> None:
    def depth(value: Any) -> int:
        if isinstance(value, list):
            return 1 + max(map(depth, value), default=0)
        if isinstance(value, dict):
            return 1 + max(map(depth, value.values()), default=0)
        return 0

    assert json_depth(json.dumps(document).encode()) == depth(document)


def test_a_body_with_few_brackets_is_not_scanned() -> None:
    assert not exceeds_depth(b'{"a": [1, 2, 3]}', 2)
    assert exceeds_depth(nested(3), 2)
    # deep without a run of openers: found by the full scan
    staircase = b"[[]" * 40 + b"]" * 40
    assert json_depth(staircase) == 41
    assert b"[" * 3 not in staircase
    assert exceeds_depth(staircase, 32)
    assert not exceeds_depth(staircase, 41)


def test_text_errors_name_the_field() -> None:
    assert text_errors(b'{"name": "fine", "tags": ["ok"]}') is None
    assert text_errors(b'{"name": "a\\\\u0000"}') is None  # an escaped backslash, then text
    assert text_errors(b'{"tags": ["ok", "a\\u0000b"]}') == [
        {"path": "$.tags[1]", "message": "Text must not contain U+0000"}
    ]
    assert text_errors(b'{"name": "caf\xe9"}') == [
        {"path": "$.name", "message": "Text must be valid UTF-8"}
    ]
    with pytest.raises(ValueError):
        text_errors(b"\xff\xfe not json")


# -- the middleware -------------------------------------------------------------------------


async def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


@pytest.mark.parametrize("path", ["/things", "/maybe", "/raw", "/form"])
@pytest.mark.parametrize("body", [nested(100_000), deep_object(50_000), nested(33, "{", "}")])
async def test_deep_bodies_are_refused_before_decoding(
    client: AsyncTestClient[Litestar], path: str, body: bytes
) -> None:
    response = await client.post(path, content=body)
    await problem(response, 400, "JSON_TOO_DEEP")
    assert RECEIVED == []


async def test_a_body_within_the_depth_is_accepted(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post("/things", json={"name": "a", "priceInCents": 1, "tags": ["x"]})
    assert response.status_code == 201, response.text
    assert [Thing("a", 1, tags=["x"])] == RECEIVED


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (b'{"name": "a\\u0000b", "priceInCents": 1}', "$.name"),
        (b'{"name": "caf\xe9", "priceInCents": 1}', "$.name"),
        (b'{"name": "a", "priceInCents": 1, "tags": ["\\u0000"]}', "$.tags[0]"),
        (b'{"name": "a", "priceInCents": 1, "\\u0000": 1}', "$.\x00"),
        (b'{"name": "a", "priceInCents": 1, "\xff": 1}', "$.\\xff"),
    ],
)
@pytest.mark.parametrize("route", ["/things", "/raw"])
async def test_text_postgresql_cannot_store_is_refused_naming_the_field(
    client: AsyncTestClient[Litestar], body: bytes, path: str, route: str
) -> None:
    response = await client.post(route, content=body, headers={"content-type": "application/json"})
    problem_body = await problem(response, 400, "VALIDATION_FAILED")
    assert [e["path"] for e in problem_body["errors"]] == [path]
    assert RECEIVED == []


async def test_bytes_that_are_not_json_are_malformed(client: AsyncTestClient[Litestar]) -> None:
    for route in ("/things", "/raw"):
        response = await client.post(route, content=b"\xff\xfe{not json")
        await problem(response, 400, "MALFORMED_JSON")


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"priceInCents": "100"}, "$.priceInCents"),
        ({"priceInCents": 1e2}, "$.priceInCents"),
        ({"priceInCents": 1.5}, "$.priceInCents"),
        ({"priceInCents": True}, "$.priceInCents"),
        ({"public": "true"}, "$.public"),
        ({"public": 1}, "$.public"),
        ({"name": 5}, "$.name"),
    ],
)
async def test_types_are_strict(
    client: AsyncTestClient[Litestar], fields: dict[str, Any], path: str
) -> None:
    body = {"name": "a", "priceInCents": 100, **fields}
    response = await client.post("/things", json=body)
    problem_body = await problem(response, 400, "VALIDATION_FAILED")
    assert [e["path"] for e in problem_body["errors"]] == [path]
    assert RECEIVED == []


async def test_an_optional_body_may_be_absent(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.post("/maybe")).json() == {"given": False}
    response = await client.post("/maybe", json={"name": "a", "priceInCents": 1})
    assert response.json() == {"given": True}
    await problem(await client.post("/maybe", json={"priceInCents": "1"}), 400, "VALIDATION_FAILED")


async def test_a_form_post_is_left_to_its_handler(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post(
        "/form", content=b"a=%00", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.json() == {"bytes": 5}


async def test_a_body_over_the_cap_is_413(client: AsyncTestClient[Litestar]) -> None:
    body = json.dumps({"name": "x" * CAP, "priceInCents": 1}).encode()
    await problem(await client.post("/things", content=body), 413, "PAYLOAD_TOO_LARGE")


async def test_a_body_in_several_messages_is_handed_on_whole() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.extend([await receive(), await receive()])

    incoming = iter(
        [
            {"type": "http.request", "body": b'{"name": "a", ', "more_body": True},
            {"type": "http.request", "body": b'"priceInCents": 7}', "more_body": False},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> Any:
        return next(incoming)

    async def send(message: Any) -> None:
        raise AssertionError(message)

    scope = {"type": "http", "headers": [(b"transfer-encoding", b"chunked")], "state": {}}
    await BodyGuard(app, max_body_bytes=CAP)(scope, receive, send)  # type: ignore[arg-type]
    assert seen == [
        {"type": "http.request", "body": b'{"name": "a", "priceInCents": 7}', "more_body": False},
        {"type": "http.disconnect"},
    ]
