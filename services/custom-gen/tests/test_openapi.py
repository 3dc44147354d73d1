"""The OpenAPI document the service serves: valid JSON, with examples a client can rely on."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from coursemesh.chassis.testing import TestIdentity
from coursemesh.customgen.app.course_data import validate_data
from coursemesh.customgen.app.views import HandshakeResult, SyncedCourse
from coursemesh.customgen.domain.course import calculate_checksum
from coursemesh.customgen.http.handshake_body import Handshake
from coursemesh.customgen.main import create_app
from coursemesh.customgen.settings import Settings

from .conftest import make_settings

OPENAPI = "/schema/openapi.json"
HANDSHAKE = "/me/custom-courses/handshake"


@pytest.fixture
async def client(
    database_url: str, nats_url: str, identity: TestIdentity, s3: Any
) -> AsyncIterator[Any]:
    settings: Settings = make_settings(
        database_url, nats_url, identity, s3, run_workers=False, catch_up=False
    )
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def openapi_document(client: Any) -> dict[str, Any]:
    """The served document parsed as strict JSON: ``json.loads`` alone takes NaN and Infinity."""
    response = await client.get(OPENAPI)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = json.loads(response.content, parse_constant=_refuse_constant)
    return document


async def test_the_openapi_document_is_valid_json(client: Any) -> None:
    document = await openapi_document(client)
    assert document["openapi"].startswith("3.")
    assert HANDSHAKE in document["paths"]


async def test_the_handshake_examples_carry_course_data_whose_checksum_holds(
    client: Any,
) -> None:
    document = await openapi_document(client)
    answer = document["paths"][HANDSHAKE]["post"]["responses"]["200"]
    examples = [
        example["value"] for example in answer["content"]["application/json"]["examples"].values()
    ]
    assert examples
    wire_names = {field.encode_name for field in msgspec.structs.fields(SyncedCourse)}
    for value in examples:
        # The shape the route sends, as the route's own types read it.
        msgspec.json.decode(json.dumps(value), type=HandshakeResult)
        assert value["changed"], value
        assert value["missing"], value
        for course in (*value["changed"], *value["missing"]):
            assert set(course) == wire_names
            data = course["data"]
            validate_data(data)
            stored = calculate_checksum(data)
            assert (course["checksum"], course["fileSizeBytes"]) == (
                stored.checksum,
                stored.size_bytes,
            )
            metadata = data["metadata"]
            assert (course["courseCode"], course["title"], course["description"]) == (
                metadata["course_code"],
                metadata["title"],
                metadata["description"],
            )
            assert data["scripts"]
            assert data["audio_files"]


async def test_the_handshake_request_body_is_documented_from_its_declaration(
    client: Any,
) -> None:
    document = await openapi_document(client)
    body = document["paths"][HANDSHAKE]["post"]["requestBody"]
    assert body["required"] is True
    content = body["content"]["application/json"]
    schema = content["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rpartition("/")[2]]
    assert schema["required"] == ["courses"]
    assert set(schema["properties"]) == {"courses"}
    for example in content["examples"].values():
        # The example is a body the route accepts.
        held = msgspec.json.decode(json.dumps(example["value"]), type=Handshake)
        assert held.courses
