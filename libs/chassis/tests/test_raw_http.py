"""Handlers that decode their own body and send encoded JSON answer exactly as declared ones do
(in-process app, no database)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
import pytest
from litestar import Litestar, Request, post
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient

from coursemesh.chassis.body import decode_json_body
from coursemesh.chassis.errors import exception_handlers
from coursemesh.chassis.headers import raw_header
from coursemesh.chassis.responses import EncodedJson


class Item(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    item_id: uuid.UUID
    checksum: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{4}$")]


class Body(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    items: Annotated[list[Item], msgspec.Meta(max_length=3)]


_body = msgspec.json.Decoder(Body)


@post("/declared", status_code=200)
async def declared(data: JSONBody[Body]) -> Body:
    return data


@post("/raw", status_code=200)
async def raw(request: Request[Any, Any, Any]) -> EncodedJson:
    return EncodedJson(msgspec.json.encode(decode_json_body(await request.body(), _body)))


@pytest.fixture
async def client() -> Any:
    app = Litestar([declared, raw], exception_handlers=exception_handlers())
    async with AsyncTestClient(app) as test_client:
        yield test_client


ITEM = {"itemId": "0195f0a0-0000-7000-8000-000000000001", "checksum": "00af"}
SAME = [
    {"items": [ITEM]},
    {"items": []},
    {"items": [{**ITEM, "itemId": ITEM["itemId"].upper()}]},  # UUID forms msgspec accepts
    {"items": [ITEM, {**ITEM, "checksum": "zz"}]},  # second item's field
    {"items": [{**ITEM, "extra": 1}]},
    {"items": [{"checksum": "00af"}]},
    {"items": [ITEM] * 4},
    {"items": [1]},
    {"items": "no"},
    {"other": 1},
    {},
    [],
    None,
    "text",
]


@pytest.mark.parametrize("body", SAME)
async def test_answers_as_a_declared_body_does(client: Any, body: Any) -> None:
    content = msgspec.json.encode(body)
    want = await client.post("/declared", content=content)
    got = await client.post("/raw", content=content)
    assert (got.status_code, got.headers["content-type"]) == (
        want.status_code,
        want.headers["content-type"],
    )
    assert got.content.replace(b'"/raw"', b'"/declared"') == want.content  # the `instance`
    assert got.headers["content-length"] == str(len(got.content))


@pytest.mark.parametrize("content", [b'{"items": [', b'{"items": []} x', b"\x00"])
async def test_a_body_that_is_not_json_is_malformed_as_for_a_declared_body(
    client: Any, content: bytes
) -> None:
    want = await client.post("/declared", content=content)
    got = await client.post("/raw", content=content)
    assert got.content.replace(b'"/raw"', b'"/declared"') == want.content
    assert got.json()["code"] == "MALFORMED_JSON"


async def test_deliberate_differences(client: Any) -> None:
    # Not UTF-8: malformed JSON (a declared body let it through to a 500).
    answer = await client.post("/raw", content=b'{"items": [], "\xff": 1}')
    assert (answer.status_code, answer.json()["code"]) == (400, "MALFORMED_JSON")
    # Empty: a body of `null`, refused at `$` with msgspec's message (a declared body said
    # "'data'").
    answer = await client.post("/raw", content=b"")
    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        {"path": "$", "message": "Expected `object`, got `null`", "source": "body"}
    ]


def test_raw_header_reads_the_first_value_of_a_lower_case_name() -> None:
    scope = {"headers": [(b"x-a", b"1"), (b"authorization", b"Bearer t"), (b"x-a", b"2")]}
    assert raw_header(scope, b"x-a") == "1"
    assert raw_header(scope, b"authorization") == "Bearer t"
    assert raw_header(scope, b"x-missing") is None
