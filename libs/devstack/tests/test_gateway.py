"""The Caddy gateway routes by path, adds request ids, limits bodies, balances replicas."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from coursemesh.devstack.infra import CaddyGateway
from coursemesh.devstack.infra.gateway import gateway_gomaxprocs
from coursemesh.devstack.infra.nats import http_ok
from coursemesh.devstack.ports import free_port
from coursemesh.devstack.process import ManagedProcess, wait_until
from coursemesh.devstack.testing import assert_pids_gone

STANDIN = Path(__file__).with_name("standin_app.py")
ALLOWED_ORIGIN = "https://app.example"  # the stand-ins' (standin_app.ALLOWED_ORIGIN)
SERVICES = ["catalog", "commerce", "learning", "custom-gen", "integrations"]


@dataclass
class Gateway:
    url: str
    client: httpx.Client
    upstreams: dict[str, list[str]]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gateway")
    # two catalog replicas, one of every other service, plus a dead commerce-like address
    upstreams = {name: [f"127.0.0.1:{free_port()}"] for name in SERVICES}
    upstreams["catalog"].append(f"127.0.0.1:{free_port()}")
    specs = [f"{name}:{a.rsplit(':', 1)[1]}" for name, addrs in upstreams.items() for a in addrs]
    standins = ManagedProcess(
        "standins", [sys.executable, str(STANDIN), "--multi", *specs], log_path=tmp / "standins.log"
    ).start()
    keys = tmp / "keys"
    keys.mkdir()
    (keys / "jwks.json").write_text(json.dumps({"keys": [{"kid": "k1", "kty": "RSA"}]}))
    caddy = CaddyGateway(upstreams, jwks_dir=keys, state_dir=tmp / "caddy")
    try:
        for addrs in upstreams.values():
            for addr in addrs:
                wait_until(
                    lambda addr=addr: http_ok(f"http://{addr}/health/live"),  # type: ignore[misc]
                    timeout=30,
                    what=addr,
                    process=standins,
                )
        caddy.start()
        with httpx.Client(base_url=caddy.url, timeout=15) as client:
            yield Gateway(caddy.url, client, upstreams)
    finally:
        caddy.stop()
        standins.stop()
    assert_pids_gone([caddy.pid, standins.pid])


ROUTES = [
    # commerce: the specific sub-resources win over catalog's /organizations catch-all
    ("/organizations/o1/courses/c1/price", "commerce"),
    ("/organizations/o1/courses/c1/entitlements", "commerce"),
    ("/organizations/o1/courses/c1/entitlements/e1/revoke", "commerce"),
    ("/organizations/o1/entitlements", "commerce"),
    ("/organizations/o1/custom-course-offers", "commerce"),
    ("/organizations/o1/custom-course-offers/x", "commerce"),
    ("/organizations/o1/leads", "commerce"),
    ("/organizations/o1/entitlements/e1/history", "commerce"),
    ("/me/courses/c1/history", "commerce"),
    ("/courses/c1/checkout", "commerce"),
    ("/custom-course-offers/abc", "commerce"),
    ("/webhooks/sandbox", "commerce"),
    ("/pay/chk_1", "commerce"),
    # learning
    ("/me/courses", "learning"),
    ("/me/courses/c1/days/3/complete", "learning"),
    ("/organizations/o1/courses/c1/enrollments", "learning"),
    ("/organizations/o1/courses/c1/enrollments/u1", "learning"),
    ("/me/courses/c1/certificate", "learning"),
    ("/public/certificates/z1", "learning"),
    # custom-gen
    ("/me/custom-courses", "custom-gen"),
    ("/me/custom-courses/cc1/handshake", "custom-gen"),
    ("/me/custom-course-purchases", "custom-gen"),
    ("/organizations/o1/custom-courses", "custom-gen"),
    ("/organizations/o1/regen-requests/r1", "custom-gen"),
    # integrations
    ("/organizations/o1/webhook-endpoints", "integrations"),
    ("/organizations/o1/webhook-endpoints/w1/deliveries/d1/replay", "integrations"),
    # catalog: everything else under /organizations and /public
    ("/organizations", "catalog"),
    ("/organizations/o1", "catalog"),
    ("/organizations/o1/courses", "catalog"),
    ("/organizations/o1/courses/c1", "catalog"),
    ("/organizations/o1/courses/c1/days", "catalog"),
    ("/organizations/o1/courses/c1/publish", "catalog"),
    ("/organizations/o1/courses/c1/price-history", "catalog"),
    ("/organizations/o1/workouts/w1", "catalog"),
    ("/public/courses/c1", "catalog"),
]


@pytest.mark.parametrize(("path", "service"), ROUTES)
def test_routes_by_path_to_the_right_service(gateway: Gateway, path: str, service: str) -> None:
    response = gateway.client.get(path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["service"] == service
    assert body["path"] == path


#: Sellers' payment settings, the pages a buyer or seller returns to from the payment provider,
#: the provider's webhooks and the sandbox's hosted pages: commerce's, with the methods and
#: query strings their clients send.
PAYMENT_ROUTES = [
    ("POST", "/organizations/o1/payments/onboarding"),
    ("GET", "/organizations/o1/payments/account"),
    ("PUT", "/organizations/o1/return-url-allowlist"),
    ("GET", "/organizations/o1/return-url-allowlist"),
    ("POST", "/courses/c1/checkout"),
    ("POST", "/custom-course-offers/ABC123/checkout"),
    ("GET", "/checkout/success?session=sbx_1"),
    ("GET", "/checkout/cancelled?session=sbx_1"),
    ("GET", "/payments/onboarding/return"),
    ("GET", "/payments/onboarding/refresh"),
    ("POST", "/webhooks/stripe"),
    ("POST", "/webhooks/payments/o1"),
    ("GET", "/pay/sbx_1"),
    ("POST", "/pay/sbx_1/pay"),
    ("POST", "/pay/sbx_1/decline"),
    ("GET", "/pay/accounts/acct_sbx_1/onboarding"),
    ("POST", "/pay/accounts/acct_sbx_1/onboarding"),
]


@pytest.mark.parametrize(("method", "target"), PAYMENT_ROUTES)
def test_payment_routes_reach_commerce(gateway: Gateway, method: str, target: str) -> None:
    response = gateway.client.request(method, target)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["service"], body["method"]) == ("commerce", method)
    assert body["path"] == target.split("?", 1)[0]


@pytest.mark.parametrize(
    ("path", "service"),
    [
        # whole segments only: a longer name is not commerce's resource
        ("/organizations/o1/payments-report", "catalog"),
        ("/organizations/o1/return-url-allowlist/u1", "catalog"),
    ],
)
def test_payment_routes_match_whole_segments(gateway: Gateway, path: str, service: str) -> None:
    assert gateway.client.get(path).json()["service"] == service


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/nope",
        "/me",
        "/me/profile",
        "/courses/c1",
        "/public",
        "/checkout",
        "/checkout/elsewhere",
        "/payments",
        "/payments/onboarding",
    ],
)
def test_unknown_route_is_problem_json_404(gateway: Gateway, path: str) -> None:
    response = gateway.client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "code": "ROUTE_NOT_FOUND",
    }
    assert response.headers["x-request-id"]


def test_health_routes_reach_each_service_readiness(gateway: Gateway) -> None:
    for name in SERVICES:
        response = gateway.client.get(f"/health/{name}")
        assert response.status_code == 200
        assert response.json() == {"status": "ready", "service": name}


def test_request_id_is_generated_or_kept_and_returned(gateway: Gateway) -> None:
    generated = gateway.client.get("/organizations")
    rid = generated.headers["x-request-id"]
    assert len(rid) == 36
    assert generated.json()["request_id"] == rid
    kept = gateway.client.post("/courses/c1/checkout", headers={"X-Request-ID": "client-42"})
    assert kept.headers["x-request-id"] == "client-42"
    assert kept.json()["request_id"] == "client-42"
    # the services return the id too: the client still sees it once
    assert generated.headers.get_list("x-request-id") == [rid]
    assert kept.headers.get_list("x-request-id") == ["client-42"]


@pytest.mark.parametrize("path", ["/organizations/o1/courses/c1/price", "/me/courses/c1"])
def test_cors_preflight_reaches_the_service_and_comes_back(gateway: Gateway, path: str) -> None:
    asked = {
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }
    allowed = gateway.client.options(path, headers={"Origin": ALLOWED_ORIGIN, **asked})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "PATCH" in allowed.headers["access-control-allow-methods"]
    assert "idempotency-key" in allowed.headers["access-control-allow-headers"].lower()
    assert allowed.headers.get_list("x-request-id")[0]
    refused = gateway.client.options(path, headers={"Origin": "https://evil.example", **asked})
    assert "access-control-allow-origin" not in refused.headers


def test_body_over_one_mebibyte_is_rejected_with_413(gateway: Gateway) -> None:
    limit = 1024 * 1024
    ok = gateway.client.post("/organizations/o1/courses", content=b"x" * limit)
    assert ok.status_code == 200
    assert ok.json()["body_bytes"] == limit
    too_big = gateway.client.post("/organizations/o1/courses", content=b"x" * (limit + 1))
    assert too_big.status_code == 413
    assert too_big.headers["content-type"] == "application/problem+json"
    assert too_big.json()["code"] == "PAYLOAD_TOO_LARGE"

    def chunks() -> Iterator[bytes]:  # no Content-Length: cut while streaming
        for _ in range(12):
            yield b"y" * 100_000

    streamed = gateway.client.post("/organizations/o1/courses", content=chunks())
    assert streamed.status_code == 413


def test_round_robin_across_two_replicas(gateway: Gateway) -> None:
    instances = [gateway.client.get("/public/courses/c1").json()["instance"] for _ in range(6)]
    expected = {f"catalog-{a.rsplit(':', 1)[1]}" for a in gateway.upstreams["catalog"]}
    assert set(instances) == expected
    assert instances[0] != instances[1]


def test_jwks_is_served_from_the_jwks_dir(gateway: Gateway) -> None:
    response = gateway.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.json()["keys"][0]["kid"] == "k1"


def test_unreachable_upstream_is_problem_json(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    with CaddyGateway({"commerce": [dead]}, state_dir=tmp_path, lb_try_duration="200ms") as caddy:
        response = httpx.get(f"{caddy.url}/webhooks/x", timeout=15)
        missing = httpx.get(f"{caddy.url}/organizations", timeout=15)  # no catalog upstream
    for r in (response, missing):
        assert r.status_code in (502, 503)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "UPSTREAM_UNAVAILABLE"
        assert r.headers["x-request-id"]


@pytest.mark.parametrize(("cores", "procs"), [(1, 1), (2, 1), (8, 4)])
def test_gateway_takes_half_the_cores(cores: int, procs: int) -> None:
    assert gateway_gomaxprocs(cores) == procs


def test_an_operators_gomaxprocs_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    caddy = CaddyGateway({}, state_dir=tmp_path)
    assert caddy.environment()["GOMAXPROCS"] == str(gateway_gomaxprocs())
    monkeypatch.setenv("GOMAXPROCS", "3")
    assert "GOMAXPROCS" not in caddy.environment()  # the inherited 3 reaches Caddy untouched


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_openapi_document_is_proxied(gateway: Gateway, name: str) -> None:
    response = gateway.client.get(f"/openapi/{name}.json")
    assert response.status_code == 200, response.text
    body = response.json()
    # the stand-in echoes: the service's own document path, at the right service
    assert (body["service"], body["path"]) == (name, "/openapi.json")


def test_the_merged_openapi_document_is_served(gateway: Gateway) -> None:
    response = gateway.client.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] == "coursemesh API"
    assert "/organizations/{org_id}/courses" in document["paths"]
    assert "bearer" in document["components"]["securitySchemes"]


def test_the_api_reference_page_is_served(gateway: Gateway) -> None:
    response = gateway.client.get("/docs")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert 'spec-url="openapi.json"' in response.text
