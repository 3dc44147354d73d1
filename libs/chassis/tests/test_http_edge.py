"""The chassis' HTTP edge on a real app: auth, problem+json, validation, body limit, health."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Litestar, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from coursemesh.chassis.app import create_service_app
from coursemesh.chassis.auth import JwtVerifier, Principal, TokenError, authenticated
from coursemesh.chassis.db import Database
from coursemesh.chassis.demo.service import PRODUCER
from coursemesh.chassis.errors import Conflict
from coursemesh.chassis.migrations import upgrade_head
from coursemesh.chassis.settings import ServiceSettings
from coursemesh.chassis.telemetry import setup_tracing

KID = "test-key"
JWKS_FETCHES: list[str] = []  # every GET the JWKS server answered


@pytest.fixture(scope="module")
def keypair() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem


def mint(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "user_1", "iss": "test-issuer", "iat": now, "exp": now + 600, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": KID})


@pytest.fixture(scope="module")
def jwks_url(keypair: tuple[rsa.RSAPrivateKey, bytes]) -> Iterator[str]:
    """A real HTTP server publishing the public key as a JWKS document."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keypair[0].public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            JWKS_FETCHES.append(self.path)
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    server.shutdown()


class Thing(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    name: str
    day_offset: int


@post("/things", guards=[authenticated])
async def create_thing(
    data: JSONBody[Thing], principal: NamedDependency[Principal]
) -> dict[str, Any]:
    return {"owner": principal.sub, "email": principal.email, "dayOffset": data.day_offset}


@get("/conflict")
async def conflict() -> None:
    raise Conflict("That course is already owned", code="COURSE_ALREADY_OWNED")


@get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals /etc/passwd")


@get("/sql")
async def run_sql(db: NamedDependency[Database]) -> None:
    await db.ping()


def _app(database_url: str, nats_url: str, jwks_url: str, sample_ratio: float = 1.0) -> Litestar:
    settings = ServiceSettings(
        database_url=database_url,
        nats_url=nats_url,
        jwks_url=jwks_url,
        jwt_issuer="test-issuer",
        log_format="text",
        otel_sample_ratio=sample_ratio,
    )
    return create_service_app(
        PRODUCER, route_handlers=[create_thing, conflict, boom, run_sql], settings=settings
    )


@pytest.fixture
async def client(
    fresh_database_url: str, nats_url: str, jwks_url: str
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    await upgrade_head(PRODUCER, fresh_database_url)
    async with AsyncTestClient(_app(fresh_database_url, nats_url, jwks_url)) as c:
        yield c


_EXPORTER = InMemorySpanExporter()
_ADDED_TO: list[InMemorySpanExporter] = []  # the provider is per process: add the exporter once


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Every span finished while the test runs. The process has one global provider (the
    first app installs it; so does this), with one in-memory exporter added once."""
    provider = setup_tracing(service="test", instance_id="test", exporter="none")
    if _EXPORTER not in _ADDED_TO:
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        _ADDED_TO.append(_EXPORTER)
    _EXPORTER.clear()
    return _EXPORTER


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_valid_token_gives_the_principal(client: Any, keypair: Any) -> None:
    token = mint(keypair[0], email="a@example.com", name="Ann")
    r = await client.post("/things", json={"name": "x", "dayOffset": 2}, headers=auth(token))
    assert r.status_code == 201
    assert r.json() == {"owner": "user_1", "email": "a@example.com", "dayOffset": 2}


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "MISSING_TOKEN"),
        ({"Authorization": "Basic abc"}, "INVALID_TOKEN"),
        ({"Authorization": "Bearer not.a.jwt"}, "INVALID_TOKEN"),
    ],
)
async def test_missing_or_malformed_token_is_401_problem(
    client: Any, headers: dict[str, str], code: str
) -> None:
    r = await client.post("/things", json={"name": "x", "dayOffset": 1}, headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code


async def test_expired_token_is_401(client: Any, keypair: Any) -> None:
    token = mint(keypair[0], exp=int(time.time()) - 3600)
    r = await client.post("/things", json={"name": "x", "dayOffset": 1}, headers=auth(token))
    assert (r.status_code, r.json()["code"]) == (401, "TOKEN_EXPIRED")


async def test_forged_token_is_401(client: Any) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    r = await client.post("/things", json={"name": "x", "dayOffset": 1}, headers=auth(mint(other)))
    assert (r.status_code, r.json()["code"]) == (401, "INVALID_TOKEN")


async def test_wrong_issuer_is_401(client: Any, keypair: Any) -> None:
    token = mint(keypair[0], iss="someone-else")
    r = await client.post("/things", json={"name": "x", "dayOffset": 1}, headers=auth(token))
    assert r.status_code == 401


async def test_domain_error_is_problem_json_with_stable_code(client: Any) -> None:
    r = await client.get("/conflict")
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "COURSE_ALREADY_OWNED"
    assert body["detail"] == "That course is already owned"
    assert body["status"] == 409


async def test_validation_error_names_the_field_path(client: Any, keypair: Any) -> None:
    r = await client.post(
        "/things", json={"name": "x", "dayOffset": "two"}, headers=auth(mint(keypair[0]))
    )
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "VALIDATION_FAILED"
    assert body["errors"][0]["path"] == "$.dayOffset"


async def test_unknown_field_is_refused(client: Any, keypair: Any) -> None:
    r = await client.post(
        "/things",
        json={"name": "x", "dayOffset": 1, "admin": True},
        headers=auth(mint(keypair[0])),
    )
    assert r.status_code == 400
    assert "admin" in json.dumps(r.json()["errors"])


async def test_malformed_json_is_refused(client: Any, keypair: Any) -> None:
    r = await client.post(
        "/things",
        content=b'{"name": ',
        headers={**auth(mint(keypair[0])), "content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["code"] == "MALFORMED_JSON"


async def test_oversized_body_is_413(client: Any, keypair: Any) -> None:
    big = b'{"name": "' + b"x" * (1_048_576 + 10) + b'", "dayOffset": 1}'
    r = await client.post(
        "/things",
        content=big,
        headers={**auth(mint(keypair[0])), "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["code"] == "PAYLOAD_TOO_LARGE"


async def test_unexpected_error_hides_internals(client: Any) -> None:
    r = await client.get("/boom")
    assert r.status_code == 500
    assert r.json()["code"] == "INTERNAL_ERROR"
    assert "passwd" not in r.text
    assert "Traceback" not in r.text


async def test_unknown_route_is_problem_json(client: Any) -> None:
    r = await client.get("/nope")
    assert r.status_code == 404
    assert r.json()["code"] == "NOT_FOUND"


async def test_health_live_and_ready(client: Any) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    r = await client.get("/health/ready")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "ok", "nats": "ok"}


async def test_ready_is_503_when_migrations_are_not_at_head(
    fresh_database_url: str, nats_url: str, jwks_url: str
) -> None:
    settings = ServiceSettings(
        database_url=fresh_database_url, nats_url=nats_url, jwks_url=jwks_url, log_format="text"
    )
    app = create_service_app(PRODUCER, settings=settings)  # no migration was run
    async with AsyncTestClient(app) as c:
        r = await c.get("/health/ready")
    assert r.status_code == 503
    assert r.json()["code"] == "NOT_READY"
    assert r.json()["checks"]["database"] == "migrations pending (no revision yet, head 0001)"


async def test_pem_public_key_verifies(keypair: Any, tmp_path: Path) -> None:
    pem_file = tmp_path / "key.pem"
    pem_file.write_bytes(keypair[1])
    verifier = JwtVerifier.from_settings(
        jwks_url=None, public_key_file=str(pem_file), issuer=None, audience=None
    )
    principal = await verifier.verify(mint(keypair[0], name="Ann"))
    assert principal == Principal(sub="user_1", email=None, name="Ann")
    with pytest.raises(TokenError):
        await verifier.verify(mint(rsa.generate_private_key(public_exponent=65537, key_size=2048)))


async def test_unknown_and_missing_fields_point_at_the_field(client: Any, keypair: Any) -> None:
    r = await client.post(
        "/things",
        json={"name": "x", "dayOffset": 1, "admin": True},
        headers=auth(mint(keypair[0])),
    )
    assert [e["path"] for e in r.json()["errors"]] == ["$.admin"]
    r = await client.post("/things", json={"name": "x"}, headers=auth(mint(keypair[0])))
    assert [e["path"] for e in r.json()["errors"]] == ["$.dayOffset"]


async def test_requests_and_sql_are_traced(client: Any, spans: InMemorySpanExporter) -> None:
    exporter = spans
    r = await client.get("/conflict", headers={"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"})
    assert r.status_code == 409
    server = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert server
    assert f"{server[0].context.trace_id:032x}" == "ab" * 16  # continues the caller's trace
    exporter.clear()
    assert (await client.get("/health/ready")).status_code == 200
    sql = [
        s
        for s in exporter.get_finished_spans()
        if s.attributes and "db.system" in str(s.attributes)
    ]
    assert sql, "the readiness check's SQL produced no span"


def _server_and_sql(spans: InMemorySpanExporter) -> tuple[list[Any], list[Any]]:
    """The request's server span and the spans of its ``SELECT 1`` (the relay and consumers
    running in the background record SQL spans of their own)."""
    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind == trace.SpanKind.SERVER]
    sql = [s for s in finished if "SELECT 1" in str((s.attributes or {}).values())]
    spans.clear()
    return server, sql


async def test_head_sampling_skips_untraced_requests_and_everything_below_them(
    fresh_database_url: str, nats_url: str, jwks_url: str, spans: InMemorySpanExporter
) -> None:
    await upgrade_head(PRODUCER, fresh_database_url)
    async with AsyncTestClient(_app(fresh_database_url, nats_url, jwks_url, 0.0)) as client:
        assert (await client.get("/sql")).status_code == 200
        assert _server_and_sql(spans) == ([], [])  # not the request, not its SQL either

        sampled = f"00-{'ab' * 16}-{'cd' * 8}-01"
        assert (await client.get("/sql", headers={"traceparent": sampled})).status_code == 200
        server, sql = _server_and_sql(spans)
        assert [f"{s.context.trace_id:032x}" for s in server] == ["ab" * 16]
        assert sql
        assert all(s.context.trace_id == server[0].context.trace_id for s in sql)


async def test_a_caller_that_did_not_sample_is_followed(
    client: Any, spans: InMemorySpanExporter
) -> None:
    unsampled = f"00-{'ab' * 16}-{'cd' * 8}-00"
    assert (await client.get("/sql", headers={"traceparent": unsampled})).status_code == 200
    assert _server_and_sql(spans) == ([], [])
    assert (await client.get("/sql")).status_code == 200  # ratio 1.0: traced
    server, sql = _server_and_sql(spans)
    assert len(server) == 1
    assert sql


async def test_jwks_keys_are_fetched_once_then_served_from_memory(
    keypair: Any, jwks_url: str
) -> None:
    verifier = JwtVerifier(jwks_url=jwks_url, issuer="test-issuer")
    before = len(JWKS_FETCHES)
    assert (await verifier.verify(mint(keypair[0]))).sub == "user_1"
    assert len(JWKS_FETCHES) == before + 1
    for _ in range(3):
        assert (await verifier.verify(mint(keypair[0], sub="user_2"))).sub == "user_2"
    assert len(JWKS_FETCHES) == before + 1
    with pytest.raises(TokenError):  # a token naming a key the JWKS lacks is still refused
        await verifier.verify(
            jwt.encode(
                {"sub": "x", "exp": int(time.time()) + 60}, keypair[0], "RS256", {"kid": "nope"}
            )
        )


async def test_a_token_is_verified_once_then_remembered_until_it_expires(
    keypair: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = JwtVerifier(public_key_pem=keypair[1], issuer="test-issuer", leeway=0)
    decodes: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decodes.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    expires_at = int(time.time()) + 2
    token = mint(keypair[0], exp=expires_at)
    for _ in range(3):
        assert (await verifier.verify(token)).sub == "user_1"
    assert decodes == [token]  # checked once, then answered from memory

    deadline = time.monotonic() + 10
    while time.time() < expires_at + 0.01:  # a condition with a deadline, not a fixed sleep
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    with pytest.raises(TokenError) as refused:
        await verifier.verify(token)
    assert refused.value.code == "TOKEN_EXPIRED"
