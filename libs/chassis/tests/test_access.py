"""Request ids, access logs, server errors an operator can trace, and CORS from configuration,
on a real service app (database and NATS running)."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from coursemesh.chassis.app import create_service_app
from coursemesh.chassis.demo.service import PRODUCER
from coursemesh.chassis.migrations import upgrade_head
from coursemesh.chassis.settings import ServiceSettings, SettingsError, load_settings
from coursemesh.chassis.testing import TestIdentity

TRACE = "ab" * 16
TRACEPARENT = f"00-{TRACE}-{'cd' * 8}-01"
ORIGIN = "https://app.example"


@get("/ok")
async def ok() -> dict[str, str]:
    return {"status": "ok"}


@get("/explode")
async def explode() -> None:
    raise RuntimeError("internal detail")


Serve = Callable[..., Any]


@pytest.fixture
async def migrated(fresh_database_url: str) -> str:
    await upgrade_head(PRODUCER, fresh_database_url)
    return fresh_database_url


@pytest.fixture
def captured() -> io.StringIO:
    """What the service's log handler writes, formatted and filtered as it is (JSON or text):
    ``serve`` adds a second handler sharing the installed one's formatter and filters."""
    return io.StringIO()


@pytest.fixture
def serve(
    migrated: str, nats_url: str, tmp_path: Path, captured: io.StringIO
) -> Callable[..., Any]:
    identity = TestIdentity(tmp_path / "keys")

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[AsyncTestClient[Litestar]]:
        settings = ServiceSettings(
            database_url=migrated,
            nats_url=nats_url,
            jwt_public_key_file=str(identity.public_key_file),
            **{"log_format": "json", **overrides},
        )
        app = create_service_app(PRODUCER, route_handlers=[ok, explode], settings=settings)
        root = logging.getLogger()
        installed = root.handlers[0]  # what create_service_app set up
        handler = logging.StreamHandler(captured)
        handler.setFormatter(installed.formatter)
        for flt in installed.filters:
            handler.addFilter(flt)
        root.addHandler(handler)
        try:
            async with AsyncTestClient(app) as client:
                yield client
        finally:
            root.removeHandler(handler)

    return run


def json_lines(stream: io.StringIO, logger: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line["name"] == logger]


async def test_an_access_line_per_request_with_the_given_request_id_and_the_trace(
    serve: Serve, captured: io.StringIO
) -> None:
    async with serve() as client:
        r = await client.get(
            "/ok?token=s3cret", headers={"X-Request-ID": "req-given-1", "traceparent": TRACEPARENT}
        )
    assert r.status_code == 200
    assert r.headers.get_list("x-request-id") == ["req-given-1"]
    [line] = json_lines(captured, "coursemesh.access")
    assert line["level"] == "INFO"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/ok", 200)
    assert line["request_id"] == "req-given-1"
    assert line["trace_id"] == TRACE
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    assert line["message"].startswith("GET /ok 200 ")
    assert "s3cret" not in json.dumps(line)  # the query string is never logged


async def test_a_request_without_an_id_gets_one_returned_and_logged(
    serve: Serve, captured: io.StringIO
) -> None:
    async with serve() as client:
        r = await client.get("/ok")
        missing = await client.get("/no-such-route", headers={"X-Request-ID": "x" * 500})
    rid = r.headers["x-request-id"]
    assert uuid.UUID(rid)
    assert missing.status_code == 404
    refused = missing.headers["x-request-id"]  # an unusable id is replaced
    assert uuid.UUID(refused)
    first, second = json_lines(captured, "coursemesh.access")
    assert (first["path"], first["status"], first["request_id"]) == ("/ok", 200, rid)
    assert len(first["trace_id"]) == 32
    assert int(first["trace_id"], 16)
    assert (second["path"], second["status"], second["request_id"]) == (
        "/no-such-route",
        404,
        refused,
    )


async def test_health_probes_and_a_disabled_access_log_write_no_line(
    serve: Serve, captured: io.StringIO
) -> None:
    async with serve() as client:
        assert (await client.get("/health/live")).status_code == 200
    assert json_lines(captured, "coursemesh.access") == []  # DEBUG, below the INFO level
    async with serve(access_log=False) as client:
        r = await client.get("/ok", headers={"X-Request-ID": "still-returned"})
    assert r.headers["x-request-id"] == "still-returned"
    assert json_lines(captured, "coursemesh.access") == []


async def test_a_text_access_line_names_both_ids(serve: Serve, captured: io.StringIO) -> None:
    async with serve(log_format="text") as client:
        await client.get("/ok", headers={"X-Request-ID": "req-text", "traceparent": TRACEPARENT})
    [line] = [x for x in captured.getvalue().splitlines() if "coursemesh.access" in x]
    assert "GET /ok 200 " in line
    assert f"request_id=req-text trace_id={TRACE}" in line


async def test_a_server_error_names_its_request_and_trace_in_body_and_logs(
    serve: Serve, captured: io.StringIO
) -> None:
    async with serve() as client:
        given = await client.get(
            "/explode", headers={"X-Request-ID": "req-500", "traceparent": TRACEPARENT}
        )
        generated = await client.get("/explode")
    assert given.status_code == 500
    body = given.json()
    assert body["code"] == "INTERNAL_ERROR"
    assert (body["requestId"], body["traceId"]) == ("req-500", TRACE)
    assert given.headers["x-request-id"] == "req-500"
    assert "internal detail" not in given.text

    other = generated.json()
    assert other["requestId"] == generated.headers["x-request-id"]
    assert len(other["traceId"]) == 32

    errors = json_lines(captured, "coursemesh.errors")
    assert [(e["request_id"], e["trace_id"]) for e in errors] == [
        ("req-500", TRACE),
        (other["requestId"], other["traceId"]),
    ]
    assert "RuntimeError: internal detail" in errors[0]["exc_info"]
    access = json_lines(captured, "coursemesh.access")
    assert [(a["status"], a["request_id"], a["trace_id"]) for a in access] == [
        (500, "req-500", TRACE),
        (500, other["requestId"], other["traceId"]),
    ]


def preflight(origin: str, method: str = "PATCH") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": (
            "authorization, content-type, idempotency-key, x-request-id, consistency-token"
        ),
    }


async def test_cors_preflight_is_allowed_for_a_configured_origin_only(serve: Serve) -> None:
    async with serve(cors_allow_origins=f"{ORIGIN}, https://admin.example") as client:
        allowed = await client.options("/ok", headers=preflight(ORIGIN))
        refused = await client.options("/ok", headers=preflight("https://evil.example"))
        simple = await client.get("/ok", headers={"Origin": ORIGIN})
        foreign = await client.get("/ok", headers={"Origin": "https://evil.example"})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "PATCH" in allowed.headers["access-control-allow-methods"]
    allowed_headers = allowed.headers["access-control-allow-headers"].lower()
    for name in ("authorization", "idempotency-key", "x-request-id", "consistency-token"):
        assert name in allowed_headers
    assert allowed.headers["x-request-id"]

    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers

    assert simple.status_code == 200
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    exposed = simple.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed
    assert "consistency-token" in exposed
    assert "access-control-allow-origin" not in foreign.headers


async def test_cors_is_off_by_default(serve: Serve) -> None:
    async with serve() as client:
        pre = await client.options("/ok", headers=preflight(ORIGIN))
        simple = await client.get("/ok", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in pre.headers
    assert pre.status_code != 204 or "access-control-allow-methods" not in pre.headers
    assert not [h for h in simple.headers if h.startswith("access-control-")]


BASE = {"X_DATABASE_URL": "postgresql+asyncpg://db", "X_NATS_URL": "nats://n", "X_JWKS_URL": "u"}


def test_access_log_and_cors_settings_come_from_the_environment() -> None:
    default = load_settings(ServiceSettings, "X_", BASE)
    assert (default.access_log, default.cors_origins) == (True, ())
    env = {
        **BASE,
        "X_ACCESS_LOG": "false",
        "X_CORS_ALLOW_ORIGINS": f"{ORIGIN}, http://localhost:5173,",
    }
    settings = load_settings(ServiceSettings, "X_", env)
    assert settings.access_log is False
    assert settings.cors_origins == (ORIGIN, "http://localhost:5173")
    with pytest.raises(SettingsError, match="is not an origin"):
        load_settings(ServiceSettings, "X_", {**BASE, "X_CORS_ALLOW_ORIGINS": f"{ORIGIN}/"})
