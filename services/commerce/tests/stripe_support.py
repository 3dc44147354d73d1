"""Stripe, as commerce meets it in tests: a local HTTP server speaking the parts of Stripe's API
commerce calls (Connect accounts and Account Links; Checkout Sessions created, expired and read
on a connected account; refunds), and Connect events signed with Stripe's scheme as Stripe
posts them to the platform's one endpoint."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from commerce_support import Catalog, Harness
from litestar.testing import AsyncTestClient

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity
from coursemesh.commerce.main import create_app
from coursemesh.commerce.service import SERVICE
from coursemesh.commerce.settings import Settings

WEBHOOK_SECRET = "whsec_test_commerce"


@dataclass
class FakeStripe:
    base: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    #: connected accounts by id: their ``charges_enabled`` etc.
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: what ``POST …/expire`` answers: "expired", "not_open" (400) or "error" (500)
    expire: str = "expired"
    #: the status ``GET /v1/checkout/sessions/{id}`` reports
    session_status: str = "complete"
    #: what ``POST /v1/accounts`` answers: "ok" or "error" (500)
    accounts_api: str = "ok"
    #: what ``POST /v1/checkout/sessions`` answers: "ok" or "refuse" (400, a URL it rejects)
    sessions_api: str = "ok"
    _by_key: dict[str, str] = field(default_factory=dict)

    def paths(self, method: str = "POST") -> list[str]:
        return [c["path"] for c in self.calls if c["method"] == method]

    async def finish(self, started: dict[str, Any]) -> None:
        """The onboarding link followed to its end (``started``: the API's answer)."""
        self.enable(started["account"]["accountId"])

    def enable(self, account_id: str) -> None:
        """The seller finished Stripe's onboarding and Stripe enabled the account."""
        self.accounts[account_id].update(
            charges_enabled=True, payouts_enabled=True, details_submitted=True
        )

    def create_account(self, key: str | None) -> dict[str, Any]:
        if key and key in self._by_key:
            return self.accounts[self._by_key[key]]
        account_id = f"acct_test_{uuid.uuid4().hex[:16]}"
        self.accounts[account_id] = {
            "id": account_id,
            "object": "account",
            "charges_enabled": False,
            "payouts_enabled": False,
            "details_submitted": False,
        }
        if key:
            self._by_key[key] = account_id
        return self.accounts[account_id]


@pytest.fixture
def fake_stripe_api() -> Iterator[FakeStripe]:
    fake = FakeStripe()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _record(self, method: str) -> str:
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(length).decode()
            fake.calls.append(
                {
                    "method": method,
                    "path": self.path,
                    "body": parse_qs(body),
                    "idempotency_key": self.headers.get("idempotency-key"),
                    "stripe_account": self.headers.get("stripe-account"),
                    "auth": self.headers.get("authorization"),
                }
            )
            return self.path

        def _error(self, status: int, kind: str, message: str = "") -> None:
            self._answer(status, {"error": {"type": kind, "message": message}})

        def do_POST(self) -> None:
            path = self._record("POST")
            if path == "/v1/accounts":
                if fake.accounts_api == "error":
                    self._error(500, "api_error", "boom")
                else:
                    self._answer(200, fake.create_account(self.headers.get("idempotency-key")))
            elif path == "/v1/account_links":
                url = f"https://connect.stripe.test/setup/{uuid.uuid4().hex}"
                expires = int(time.time()) + 300
                self._answer(200, {"object": "account_link", "url": url, "expires_at": expires})
            elif path == "/v1/checkout/sessions" and fake.sessions_api == "refuse":
                self._error(400, "invalid_request_error", "Not a valid URL")
            elif path == "/v1/checkout/sessions":
                session_id = f"cs_test_{uuid.uuid4().hex}"
                url = f"https://checkout.stripe.test/{session_id}"
                self._answer(200, {"id": session_id, "object": "checkout.session", "url": url})
            elif path.endswith("/expire"):
                session_id = path.split("/")[-2]
                if fake.expire == "expired":
                    self._answer(
                        200, {"id": session_id, "object": "checkout.session", "status": "expired"}
                    )
                elif fake.expire == "not_open":
                    self._error(
                        400,
                        "invalid_request_error",
                        "Only Checkout Sessions with a status in [open] can be expired.",
                    )
                else:
                    self._error(500, "api_error", "boom")
            elif path == "/v1/refunds":
                self._answer(200, {"id": f"re_{uuid.uuid4().hex}", "object": "refund"})
            else:
                self._error(404, "invalid_request_error", f"Unrecognized request URL {path}")

        def do_GET(self) -> None:
            path = self._record("GET").split("?")[0]
            if path.startswith("/v1/accounts/"):
                account = fake.accounts.get(path.rsplit("/", 1)[1])
                if account is None:
                    self._error(404, "invalid_request_error", "No such account")
                else:
                    self._answer(200, account)
                return
            session_id = path.split("/")[-1]
            self._answer(
                200,
                {"id": session_id, "object": "checkout.session", "status": fake.session_status},
            )

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.base = f"http://127.0.0.1:{server.server_port}"
    yield fake
    server.shutdown()
    thread.join()


def stripe_settings(
    make_settings: Callable[..., Settings], fake: FakeStripe, **kw: Any
) -> Settings:
    return make_settings(
        run_workers=False,
        catch_up=False,
        payment_provider="stripe",
        stripe_api_key="sk_test_123",
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=fake.base,
        **kw,
    )


@pytest.fixture
async def stripe_harness(
    make_settings: Callable[..., Settings], identity: TestIdentity, fake_stripe_api: FakeStripe
) -> AsyncIterator[Harness]:
    """The app in-process with Stripe as its provider; an org's onboarding is finished at the
    fake Stripe (its account enabled) before the owner asks again."""
    settings = stripe_settings(make_settings, fake_stripe_api)
    db = Database(settings.database_url, SERVICE.schema)
    async with AsyncTestClient(create_app(settings)) as client:
        yield Harness(client, db, Catalog(db, {}), identity, settings, fake_stripe_api.finish)
    await db.dispose()


def stripe_signed(payload: str, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    ts = at or int(time.time())
    mac = hmac.new(secret.encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def stripe_event(
    kind: str, obj: dict[str, Any], account: str | None = None, *, livemode: bool = False
) -> str:
    """An event as Stripe sends it (test mode, as the tests' ``sk_test_`` key); a Connect
    event names its connected account."""
    event: dict[str, Any] = {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "type": kind,
        "livemode": livemode,
        "data": {"object": obj},
    }
    if account is not None:
        event["account"] = account
    return json.dumps(event)


async def post_stripe(h: Harness, payload: str, secret: str = WEBHOOK_SECRET) -> Any:
    return await h.client.post(
        "/webhooks/stripe",
        content=payload,
        headers={"stripe-signature": stripe_signed(payload, secret)},
    )


async def stripe_webhook(h: Harness, kind: str, obj: dict[str, Any], account: str | None) -> Any:
    return await post_stripe(h, stripe_event(kind, obj, account))


def session_of(txn: dict[str, Any], payment_intent: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": txn["provider_transaction_id"],
        "object": "checkout.session",
        "payment_status": "paid",
        "payment_intent": payment_intent,
        "amount_total": txn["amount_in_cents"],
        "currency": txn["currency"].lower(),
        "metadata": txn["metadata"],
        **fields,
    }
