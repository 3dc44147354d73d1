"""The OpenAPI document a service publishes: named, versioned, with its security scheme and
the problem+json answers of the chassis on every operation (built without starting anything)."""

from __future__ import annotations

import importlib.metadata
from typing import Any
from uuid import UUID

import httpx
import msgspec
import pytest
import sqlalchemy as sa
from litestar import Litestar, Request, get, post
from litestar.params import FromPath, JSONBody

from coursemesh.chassis.app import create_service_app
from coursemesh.chassis.auth import authenticate, authenticated
from coursemesh.chassis.errors import Forbidden
from coursemesh.chassis.openapi import (
    OPENAPI_PATH,
    SELF_AUTHENTICATED,
    also_served_as,
    merge_documents,
    problems,
    service_document,
)
from coursemesh.chassis.service import ServiceDefinition
from coursemesh.chassis.settings import ServiceSettings

DEMO = ServiceDefinition(
    name="demo",
    package="coursemesh.chassis",  # the version is coursemesh-chassis's
    schema="demo_openapi",
    source="demo",
    env_prefix="DEMO_OPENAPI_",
    settings_type=ServiceSettings,
    metadata=sa.MetaData(),
)


class NewThing(msgspec.Struct, rename="camel"):
    name: str
    day_offset: int


class Thing(msgspec.Struct, rename="camel"):
    id: UUID
    name: str


@get("/things/{thing_id:uuid}", guards=[authenticated])
async def get_thing(thing_id: FromPath[UUID]) -> Thing:
    return Thing(thing_id, "x")


@post("/things", guards=[authenticated], opt=problems(Forbidden, (409, "NAME_TAKEN")))
async def create_thing(data: JSONBody[NewThing]) -> Thing:
    return Thing(UUID(int=1), data.name)


@get("/public/things/{thing_id:uuid}")
async def public_thing(thing_id: FromPath[UUID]) -> Thing:
    return Thing(thing_id, "x")


@post("/me/things/sync", status_code=200, opt=SELF_AUTHENTICATED)
async def sync_things(request: Request[Any, Any, Any]) -> dict[str, str]:
    await authenticate(request)
    return {}


@get("/things", guards=[authenticated], opt=also_served_as("text/csv"))
async def list_things() -> list[Thing]:
    return []


def _app() -> Litestar:
    settings = ServiceSettings(
        database_url="postgresql+asyncpg://nobody@127.0.0.1:9/none",
        nats_url="nats://127.0.0.1:9",
        jwks_url="http://127.0.0.1:9/jwks.json",
        otel_exporter="none",
    )
    return create_service_app(
        DEMO,
        route_handlers=[get_thing, create_thing, public_thing, sync_things, list_things],
        settings=settings,
    )


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return service_document(_app())


def _responses(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    responses: dict[str, Any] = document["paths"][path][method]["responses"]
    return responses


def _codes(response: dict[str, Any]) -> list[str]:
    schema = response["content"]["application/problem+json"]["schema"]
    assert schema["allOf"][0] == {"$ref": "#/components/schemas/Problem"}
    codes: list[str] = schema["allOf"][1]["properties"]["code"]["examples"]
    for code in codes:
        assert code in response["description"]
    return codes


def test_the_document_is_named_and_versioned(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    info = document["info"]
    assert info["title"] == "coursemesh demo API"
    assert info["version"] == importlib.metadata.version("coursemesh-chassis")
    assert info["description"]


def test_guarded_operations_need_a_bearer_token_and_public_ones_do_not(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    paths = document["paths"]
    assert paths["/things/{thing_id}"]["get"]["security"] == [{"bearer": []}]
    assert paths["/things"]["post"]["security"] == [{"bearer": []}]
    assert paths["/me/things/sync"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in paths["/public/things/{thing_id}"]["get"]
    assert "401" not in paths["/public/things/{thing_id}"]["get"]["responses"]
    assert not any(path.startswith("/health") or path == OPENAPI_PATH for path in paths)


def test_the_problem_schema_is_what_the_error_handlers_produce(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "code"}
    assert {"type", "title", "status", "code", "detail", "instance", "errors"} <= set(
        problem["properties"]
    )
    item = problem["properties"]["errors"]["items"]
    assert {"path", "message", "source"} <= set(item["properties"])


def test_each_operation_documents_its_problem_answers(document: dict[str, Any]) -> None:
    body = _responses(document, "/things", "post")
    assert {"201", "400", "401", "403", "409", "413", "415", "500", "503"} <= set(body)
    assert "404" not in body  # no id in its path
    assert {"VALIDATION_FAILED", "MALFORMED_JSON"} <= set(_codes(body["400"]))
    assert _codes(body["401"])[0] == "MISSING_TOKEN"
    assert _codes(body["403"]) == ["FORBIDDEN"]
    assert _codes(body["409"]) == ["NAME_TAKEN"]
    assert _codes(body["413"]) == ["PAYLOAD_TOO_LARGE"]
    assert _codes(body["415"]) == ["UNSUPPORTED_MEDIA_TYPE"]
    assert _codes(body["500"]) == ["INTERNAL_ERROR"]

    by_id = _responses(document, "/things/{thing_id}", "get")
    assert {"200", "400", "401", "404", "500", "503"} <= set(by_id)
    assert {"413", "415"}.isdisjoint(by_id)  # no body
    assert _codes(by_id["404"]) == ["NOT_FOUND"]
    # Litestar's own 400 (its exception's shape) is replaced by the problem one.
    assert "application/problem+json" in by_id["400"]["content"]


async def test_the_service_serves_its_document() -> None:
    app = _app()
    # No lifespan: the document needs neither the database nor NATS.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        served = await client.get(OPENAPI_PATH)
        assert served.status_code == 200, served.text
        assert served.json() == service_document(app)
        legacy = await client.get("/schema/openapi.json")
        assert legacy.status_code == 200
        assert legacy.json() == served.json()


def test_merging_keeps_paths_and_prefixes_conflicting_schemas() -> None:
    def doc(path: str, schema: dict[str, Any]) -> dict[str, Any]:
        ref = {"$ref": "#/components/schemas/Progress"}
        return {
            "paths": {path: {"get": {"responses": {"200": {"content": {"a": {"schema": ref}}}}}}},
            "components": {"schemas": {"Progress": schema, "Problem": {"type": "object"}}},
        }

    merged = merge_documents(
        {
            "learning": doc("/me/courses", {"type": "integer"}),
            "custom-gen": doc("/me/custom-courses", {"type": "string"}),
        }
    )
    schemas = merged["components"]["schemas"]
    assert schemas["Progress"] == {"type": "integer"}
    assert schemas["CustomGen_Progress"] == {"type": "string"}
    assert "CustomGen_Problem" not in schemas  # identical: shared
    get_ = merged["paths"]["/me/custom-courses"]["get"]
    assert get_["responses"]["200"]["content"]["a"]["schema"]["$ref"].endswith(
        "/CustomGen_Progress"
    )
    with pytest.raises(ValueError, match="served by both"):
        merge_documents({"a": doc("/x", {}), "b": doc("/x", {})})


def test_an_answer_served_in_another_media_type_too_documents_both(
    document: dict[str, Any],
) -> None:
    content = _responses(document, "/things", "get")["200"]["content"]
    assert set(content) == {"application/json", "text/csv"}
    assert content["text/csv"] == {"schema": {"type": "string"}}
    assert content["application/json"]["schema"]["type"] == "array"
    assert "text/csv" not in _responses(document, "/things", "post")["201"]["content"]
