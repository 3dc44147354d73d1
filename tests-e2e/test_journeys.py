"""End-to-end journeys (issue 7): the whole suite as real processes, driven only through the
gateway with tokens minted by the stack's development identity.

Every journey runs twice, once per topology of the ``stack`` fixture (``conftest.py``): single
instances, and two replicas of every service. Users, organizations and slugs are unique per
test, so journeys share one stack without depending on each other. Cross-service effects are
awaited with :func:`eventually` (a deadline, never a fixed sleep).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from standardwebhooks import Webhook

from coursemesh.devstack.keys import DevIdentity
from coursemesh.devstack.stack import Stack

pytestmark = pytest.mark.e2e

T = TypeVar("T")
DEADLINE = 60.0  # seconds an eventually-consistent effect may take on a loaded 2-core box
PROBLEM_JSON = "application/problem+json"


# --- polling --------------------------------------------------------------------------------------


def eventually(
    probe: Callable[[], T], *, timeout: float = DEADLINE, interval: float = 0.05, what: str = ""
) -> T:
    """Call ``probe`` until it returns without raising ``AssertionError`` (its value is
    returned); after ``timeout`` seconds re-raise the last failure. Synchronisation by
    condition and deadline: the interval only paces the polling."""
    deadline = time.monotonic() + timeout
    pause = interval
    while True:
        try:
            return probe()
        except AssertionError as exc:
            if time.monotonic() >= deadline:
                raise AssertionError(f"not reached within {timeout}s: {what}\n{exc}") from exc
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)


# --- clients --------------------------------------------------------------------------------------


@dataclass
class User:
    sub: str
    email: str
    name: str
    client: httpx.Client

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, json_body: Any = None, **kw: Any) -> httpx.Response:
        if json_body is not None:
            kw["json"] = json_body
        return self.client.post(path, **kw)

    def patch(self, path: str, json_body: Any, **kw: Any) -> httpx.Response:
        return self.client.patch(path, json=json_body, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.delete(path, **kw)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url.path} -> "
        f"{response.status_code} (wanted {status}): {response.text[:800]}"
    )
    return response.json() if response.content else None


def problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url.path} -> "
        f"{response.status_code} (wanted {status}): {response.text[:800]}"
    )
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if code is not None:
        assert body.get("code") == code, body
    return body


@dataclass
class Course:
    org_id: str
    course_id: str
    owner: User
    workout_ids: list[str]
    price_cents: int
    org_name: str
    org_slug: str
    name: str
    curriculum: list[dict[str, Any]] = field(default_factory=list)
    curriculum_version: int = 0  # catalog's version after the last day was set


class Suite:
    """The running stack seen as a client would see it (plus its mailbox, S3 and spans)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.base_url = stack.gateway_url
        self.data_dir = Path(stack.data_dir)
        self.replicas = stack.config.replicas
        self._clients: list[httpx.Client] = []
        commerce = next(r for r in stack.replicas if r.spec.name == "commerce")
        env = stack.service_env(commerce.spec, commerce.replica)
        self.sandbox_key = env["COMMERCE_SANDBOX_WEBHOOK_KEY"]
        self.anon = self._client(None)

    def _client(self, token: str | None, **headers: str) -> httpx.Client:
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        client = httpx.Client(base_url=self.base_url, headers=headers, timeout=30.0)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def user(self, label: str = "user") -> User:
        sub = f"user_{label}_{uuid.uuid4().hex[:10]}"
        email = f"{sub}@e2e.example.com"
        name = label.title()
        token = self.stack.identity.mint_token(sub, email=email, name=name)
        return User(sub, email, name, self._client(token))

    # --- trainer side ---------------------------------------------------------------

    def organization(self, owner: User, name: str = "Move Studio") -> tuple[str, str, str]:
        slug = f"move-{uuid.uuid4().hex[:12]}"
        org_name = f"{name} {slug[-4:]}"
        body = ok(
            owner.post(
                "/organizations",
                {
                    "name": org_name,
                    "slug": slug,
                    "logoUrl": f"https://cdn.example.com/{slug}.png",
                    "currency": "EUR",
                },
            ),
            201,
        )
        assert body["role"] == "owner"
        return body["id"], org_name, slug

    def workout(self, staff: User, org_id: str, title: str) -> str:
        body = ok(
            staff.post(
                f"/organizations/{org_id}/workouts",
                {"title": title, "description": f"{title} description", "durationMinutes": 20},
            ),
            201,
        )
        return str(body["id"])

    def course(
        self,
        *,
        price_cents: int,
        owner: User | None = None,
        name: str = "3-day reset",
    ) -> Course:
        """An organization with a published, priced 3-day course (day 0: A, B; day 1: rest;
        day 2: A again), once commerce accepts checkouts for it and the storefront shows it."""
        owner = owner or self.user("owner")
        org_id, org_name, slug = self.organization(owner)
        a = self.workout(owner, org_id, "Mobility")
        b = self.workout(owner, org_id, "Strength")
        course = ok(
            owner.post(
                f"/organizations/{org_id}/courses",
                {"name": name, "description": "A short course", "durationDays": 3},
            ),
            201,
        )
        cid = str(course["id"])
        ok(
            owner.post(
                f"/organizations/{org_id}/courses/{cid}/days",
                {"dayOffset": 0, "workoutIds": [a, b]},
            )
        )
        ok(
            owner.post(
                f"/organizations/{org_id}/courses/{cid}/days", {"dayOffset": 1, "isRest": True}
            )
        )
        last_day = ok(
            owner.post(
                f"/organizations/{org_id}/courses/{cid}/days", {"dayOffset": 2, "workoutIds": [a]}
            )
        )
        # commerce learns about the org (event) before it can price the course
        eventually(
            lambda: ok(
                owner.patch(
                    f"/organizations/{org_id}/courses/{cid}/price", {"priceInCents": price_cents}
                )
            ),
            what="commerce prices the course (org + course projected)",
        )
        published = ok(owner.post(f"/organizations/{org_id}/courses/{cid}/publish"))
        assert published["status"] == "published"
        self.wait_storefront(cid)
        return Course(
            org_id,
            cid,
            owner,
            [a, b],
            price_cents,
            org_name,
            slug,
            name,
            curriculum_version=int(last_day["curriculumVersion"]),
        )

    def wait_storefront(self, course_id: str) -> dict[str, Any]:
        return eventually(
            lambda: ok(self.anon.get(f"/public/courses/{course_id}")),
            what="storefront shows the course with its price",
        )

    def checkout(self, buyer: User, course: Course, **headers: str) -> dict[str, Any]:
        """Checkout once commerce has projected the published course (404 until then)."""

        def attempt() -> dict[str, Any]:
            response = buyer.post(f"/courses/{course.course_id}/checkout", headers=headers)
            assert response.status_code != 404, response.text
            return ok(response, 201)  # type: ignore[no-any-return]

        return eventually(attempt, what="commerce accepts the checkout")

    def player(self, buyer: User, course: Course) -> dict[str, Any]:
        """The buyer's player view once learning holds every catalog event of the course: its
        last curriculum and its publication (suite courses are published before any sale)."""

        def current() -> dict[str, Any]:
            view: dict[str, Any] = ok(buyer.get(f"/me/courses/{course.course_id}"))
            assert view["curriculumVersion"] >= course.curriculum_version, view
            assert view["courseStatus"] in ("published", "archived"), view
            return view

        return eventually(current, what="learning serves the course's curriculum to its buyer")

    def entitlements(self, course: Course) -> list[dict[str, Any]]:
        page = ok(
            course.owner.get(
                f"/organizations/{course.org_id}/courses/{course.course_id}/entitlements"
            )
        )
        return list(page["items"])

    def entitlement(self, course: Course, user: User) -> dict[str, Any]:
        mine = [e for e in self.entitlements(course) if e["userId"] == user.sub]
        assert len(mine) == 1, f"one entitlement per (user, course), got {mine}"
        return mine[0]

    # --- payments -------------------------------------------------------------------

    def pay_page(
        self, payment_page_url: str, button: str = "Pay", **headers: str
    ) -> httpx.Response:
        """Open the hosted page as a browser would, and submit the form of ``button``
        (``headers`` are added to the form POST)."""
        parts = urlsplit(payment_page_url)
        assert f"{parts.scheme}://{parts.netloc}" == self.base_url, payment_page_url
        page = self.anon.get(parts.path, headers={"accept": "text/html"})
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        forms = parse_forms(page.text)
        action = next(f.action for f in forms if f.button == button)
        target = urljoin(payment_page_url, action)
        return self.anon.post(
            urlsplit(target).path,
            content=b"",
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "accept": "text/html",
                **headers,
            },
        )

    def webhook_secret(self, org_id: str) -> str:
        digest = hmac.new(self.sandbox_key.encode(), org_id.encode(), hashlib.sha256).digest()
        return "whsec_" + base64.b64encode(digest).decode()

    def signed_webhook(
        self,
        org_id: str,
        event_type: str,
        session_id: str,
        *,
        amount: int,
        metadata: dict[str, str] | None = None,
        event_id: str | None = None,
        secret_org: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        event_id = event_id or f"evt_{uuid.uuid4().hex}"
        body = json.dumps(
            {
                "id": event_id,
                "type": event_type,
                "data": {
                    "sessionId": session_id,
                    "amountInCents": amount,
                    "currency": "EUR",
                    "metadata": metadata or {},
                    "failureReason": None,
                },
            },
            separators=(",", ":"),
        )
        now = datetime.now(UTC)
        signature = Webhook(self.webhook_secret(secret_org or org_id)).sign(event_id, now, body)
        headers = {
            "content-type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
        return body.encode(), headers

    # --- mail, S3, spans ------------------------------------------------------------

    def mails_to(self, address: str) -> list[EmailMessage]:
        assert self.stack.smtp is not None
        return [m for m in self.stack.smtp.mailbox.messages() if address in str(m["To"])]

    def s3(self) -> Any:
        assert self.stack.s3 is not None
        return self.stack.s3.config.client()

    def spans(self) -> list[dict[str, Any]]:
        found = []
        for path in sorted((self.data_dir / "telemetry").glob("*.jsonl")):
            for line in path.read_text().splitlines():
                if line.strip():
                    found.append(json.loads(line))
        return found


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None
        self._in_button = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self._current = Form(
                (values.get("method") or "get").lower(), values.get("action") or "", ""
            )
        elif tag == "button" and self._current is not None:
            self._in_button = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._current is not None:
            self.forms.append(self._current)
            self._current = None
        elif tag == "button":
            self._in_button = False

    def handle_data(self, data: str) -> None:
        if self._in_button and self._current is not None:
            self._current.button += data.strip()


@dataclass
class Form:
    method: str
    action: str
    button: str


def parse_forms(page: str) -> list[Form]:
    parser = _Forms()
    parser.feed(page)
    return parser.forms


def session_id(payment_page_url: str) -> str:
    match = re.search(r"/pay/([^/?#]+)$", payment_page_url)
    assert match, payment_page_url
    return match.group(1)


@pytest.fixture(scope="session")
def suite(stack: Stack) -> Iterator[Suite]:
    s = Suite(stack)
    yield s
    s.close()


@pytest.fixture
def free_course(suite: Suite) -> Course:
    return suite.course(price_cents=0, name="Free reset")


@pytest.fixture
def paid_course(suite: Suite) -> Course:
    return suite.course(price_cents=4900, name="Paid reset")


# --- journey 1: trainer ---------------------------------------------------------------------------


def test_j1_trainer_builds_prices_and_publishes(suite: Suite) -> None:
    owner = suite.user("owner")
    trainer = suite.user("trainer")
    org_id, org_name, slug = suite.organization(owner)
    member = ok(
        owner.post(f"/organizations/{org_id}/members", {"userId": trainer.sub, "role": "trainer"}),
        201,
    )
    assert member["role"] == "trainer"
    # the staff member (not the owner) builds the course
    a = suite.workout(trainer, org_id, "Mobility")
    b = suite.workout(trainer, org_id, "Strength")
    c = suite.workout(trainer, org_id, "Breathing")
    course = ok(
        trainer.post(
            f"/organizations/{org_id}/courses",
            {"name": "4-day reset", "description": "Reset", "durationDays": 4},
        ),
        201,
    )
    cid = course["id"]
    assert course["status"] == "draft"
    days = f"/organizations/{org_id}/courses/{cid}/days"
    ok(trainer.post(days, {"dayOffset": 0, "workoutIds": [a, b]}))
    rest = ok(trainer.post(days, {"dayOffset": 1, "isRest": True}))
    assert rest["curriculum"][1]["isRest"] is True
    ok(trainer.post(days, {"dayOffset": 2, "workoutIds": [a]}))  # a on two days
    last = ok(trainer.post(days, {"dayOffset": 3, "workoutIds": [c]}))
    assert last["curriculumVersion"] == 4
    # not on the storefront while a draft
    problem(suite.anon.get(f"/public/courses/{cid}"), 404)
    eventually(
        lambda: ok(
            trainer.patch(f"/organizations/{org_id}/courses/{cid}/price", {"priceInCents": 2500})
        ),
        what="commerce prices the course",
    )
    assert ok(trainer.post(f"/organizations/{org_id}/courses/{cid}/publish"))["status"] == (
        "published"
    )

    def storefront() -> httpx.Response:
        response = suite.anon.get(f"/public/courses/{cid}")
        body = ok(response)
        assert body["price"] == {"cents": 2500, "currency": "EUR"}
        return response

    response = eventually(storefront, what="storefront shows the priced course")
    body = response.json()
    assert body["name"] == "4-day reset"
    assert body["durationDays"] == 4
    assert body["workoutCount"] == 4  # a counts twice
    assert body["seller"] == {
        "name": org_name,
        "slug": slug,
        "logoUrl": f"https://cdn.example.com/{slug}.png",
    }
    assert [w["title"] for w in body["previewWorkouts"]] == ["Mobility", "Strength"]
    etag = response.headers["etag"]
    cached = suite.anon.get(f"/public/courses/{cid}", headers={"if-none-match": etag})
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["etag"] == etag
    # a stale tag gets the full answer
    assert (
        suite.anon.get(f"/public/courses/{cid}", headers={"if-none-match": '"x"'}).status_code
        == 200
    )


# --- journey 2: free course, whole player flow ----------------------------------------------------


def test_j2_free_course_player_complete_and_restart(suite: Suite, free_course: Course) -> None:
    buyer = suite.user("buyer")
    checkout = suite.checkout(buyer, free_course)
    assert checkout["paymentPageUrl"] is None
    ent_id = checkout["entitlementId"]
    player = suite.player(buyer, free_course)
    assert player["entitlement"]["id"] == ent_id
    assert player["entitlement"]["status"] == "active"
    assert [d["isRest"] for d in player["days"]] == [False, True, False]
    mine = ok(buyer.get("/me/courses"))["courses"]
    assert [c["courseId"] for c in mine] == [free_course.course_id]

    started = ok(buyer.post(f"/me/courses/{free_course.course_id}/start", {}))
    assert started["startDate"] is not None
    assert started["completedAt"] is None

    a, b = free_course.workout_ids
    base = f"/me/courses/{free_course.course_id}/workouts"
    # the rest day cannot be completed
    problem(buyer.post(f"{base}/{a}/complete", {"dayOffset": 1}), 404, "REST_DAY")
    first = ok(buyer.post(f"{base}/{a}/complete", {"dayOffset": 0}))
    assert first["changed"] is True
    assert first["courseCompletedAt"] is None
    ok(buyer.post(f"{base}/{b}/complete", {"dayOffset": 0}))
    # a is also on day 2: its second occurrence is its own item
    last = ok(buyer.post(f"{base}/{a}/complete", {"dayOffset": 2}))
    assert last["dayOffset"] == 2
    assert last["changed"] is True
    assert last["courseCompletedAt"] is not None
    assert last["progress"] == {"completed": 3, "total": 3}
    repeat = ok(buyer.post(f"{base}/{a}/complete", {"dayOffset": 2}))
    assert repeat["changed"] is False

    done = ok(buyer.get(f"/me/courses/{free_course.course_id}"))
    assert done["entitlement"]["completedAt"] is not None
    assert len(done["completedItemIds"]) == 3
    assert set(done["completedCourseWorkoutIds"]) == {a, b}

    restarted = ok(buyer.post(f"/me/courses/{free_course.course_id}/restart"))
    assert restarted["restartCount"] == 1
    assert restarted["completedAt"] is None
    again = ok(buyer.get(f"/me/courses/{free_course.course_id}"))
    assert again["completedItemIds"] == []
    assert again["completedCourseWorkoutIds"] == []
    assert again["entitlement"]["restartCount"] == 1
    assert again["progress"] == {"completed": 0, "total": 3}


# --- journey 3: paid course through the hosted page, receipt, trace -------------------------------


def test_j3_paid_course_page_webhook_receipt_and_trace(suite: Suite, paid_course: Course) -> None:
    buyer = suite.user("payer")
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    checkout = suite.checkout(buyer, paid_course, traceparent=traceparent)
    url = checkout["paymentPageUrl"]
    assert url
    assert url.startswith(f"{suite.base_url}/pay/")
    ent_id = checkout["entitlementId"]
    # payment in flight
    eventually(
        lambda: problem(
            buyer.get(f"/me/courses/{paid_course.course_id}"), 403, "ENTITLEMENT_PENDING"
        ),
        what="learning sees the pending entitlement",
    )
    page = suite.anon.get(urlsplit(url).path)
    assert paid_course.org_name in page.text
    assert "49.00 EUR" in page.text

    pay_trace_id, pay_caller_span = secrets.token_hex(16), secrets.token_hex(8)
    paid = suite.pay_page(url, "Pay", traceparent=f"00-{pay_trace_id}-{pay_caller_span}-01")
    assert paid.status_code == 200, paid.text
    assert "paid" in paid.text

    # commerce's sandbox worker delivers the signed webhook through the gateway
    player = suite.player(buyer, paid_course)
    assert player["entitlement"]["id"] == ent_id
    assert player["entitlement"]["status"] == "active"
    ok(buyer.post(f"/me/courses/{paid_course.course_id}/start", {}))
    ent = suite.entitlement(paid_course, buyer)
    assert ent["entitlementId"] == ent_id
    assert ent["status"] == "active"
    assert ent["sourcePaymentTransactionId"] is not None
    # a second payment of the same session is refused
    assert suite.anon.post(urlsplit(url).path + "/pay").status_code == 409

    receipt = eventually(
        lambda: _one(suite.mails_to(buyer.email)), what="receipt email in the SMTP mailbox"
    )
    text = receipt.get_body(preferencelist=("plain",))
    assert text is not None
    content = text.get_content()
    assert paid_course.name in str(receipt["Subject"]) + content
    assert "49.00 EUR" in content
    assert paid_course.org_name in content
    assert buyer.email in str(receipt["To"])

    # --- the trace: caller -> gateway -> commerce -> NATS -> learning -----------------------
    spans = eventually(
        lambda: _chain(suite, trace_id, ent_id), what="spans of the checkout's trace exported"
    )
    server, publish, consume = spans
    assert server["parent_span_id"] == traceparent.split("-")[2]  # Caddy passed it through
    by_id = {s["span_id"]: s for s in suite.spans() if s["trace_id"] == trace_id}
    assert _descends(publish, server, by_id), "commerce's publish span is not under its request"
    assert consume["parent_span_id"] == publish["span_id"]  # the NATS hop carried the context

    # the activation: the Pay form POST (with the test's own traceparent) -> commerce's pay span
    # -> the sandbox sender's CLIENT span (context stored with the delivery row) -> the webhook
    # request through the gateway -> the activation's publish -> learning's consume: one trace.
    pay, client, hook, activation, applied = eventually(
        lambda: _pay_chain(suite, pay_trace_id, paid_course.org_id),
        what="the Pay trace: pay -> webhook -> publish -> learning",
    )
    assert pay["parent_span_id"] == pay_caller_span  # Caddy passed the Pay POST's traceparent
    assert client["parent_span_id"] == pay["span_id"]  # the delivery kept the pay context
    assert hook["parent_span_id"] == client["span_id"]  # the webhook carried it via Caddy
    by_pay = {s["span_id"]: s for s in suite.spans() if s["trace_id"] == pay_trace_id}
    assert _descends(activation, hook, by_pay), "the activation publish is not under the webhook"
    assert applied["parent_span_id"] == activation["span_id"]  # NATS hop to learning


def _descends(span: dict[str, Any], ancestor: dict[str, Any], by_id: dict[str, Any]) -> bool:
    current: dict[str, Any] | None = span
    while current is not None:
        if current["span_id"] == ancestor["span_id"]:
            return True
        current = by_id.get(current["parent_span_id"] or "")
    return False


def _one(items: list[T]) -> T:
    assert len(items) == 1, f"expected exactly one, got {len(items)}"
    return items[0]


def _chain(suite: Suite, trace_id: str, ent_id: str) -> tuple[dict[str, Any], ...]:
    spans = [s for s in suite.spans() if s["trace_id"] == trace_id]
    # The accepted checkout: attempts made before commerce had projected the publication got a
    # 404 under the same traceparent (``Suite.checkout`` retries them).
    server = [
        s
        for s in spans
        if s["service"] == "commerce"
        and s["kind"] == "SERVER"
        and s["attributes"].get("http.target", "").endswith("/checkout")
        and s["attributes"].get("http.status_code") == 201
    ]
    assert len(server) == 1, f"commerce server span: {server}"
    publish = [
        s
        for s in spans
        if s["service"] == "commerce"
        and s["kind"] == "PRODUCER"
        and s["name"].startswith("commerce.entitlement.changed")
    ]
    assert len(publish) == 1, f"commerce publish span: {publish}"
    message_id = publish[0]["attributes"]["messaging.message.id"]
    consume = [
        s
        for s in spans
        if s["service"] == "learning"
        and s["kind"] == "CONSUMER"
        and s["attributes"].get("messaging.message.id") == message_id
    ]
    assert len(consume) >= 1, "learning consume span"
    return server[0], publish[0], consume[0]


def _pay_chain(suite: Suite, trace_id: str, org_id: str) -> tuple[dict[str, Any], ...]:
    """The spans of the Pay trace: commerce's pay and webhook SERVER spans, the sender's
    CLIENT span, the (only) entitlement.changed publish — the activation, since the pending
    one belongs to the checkout's trace — and learning's consume of that message."""
    spans = [s for s in suite.spans() if s["trace_id"] == trace_id]
    commerce = [s for s in spans if s["service"] == "commerce"]
    pay = [
        s
        for s in commerce
        if s["kind"] == "SERVER" and s["attributes"].get("http.target", "").endswith("/pay")
    ]
    assert len(pay) == 1, f"commerce pay span: {pay}"
    clients = [s for s in commerce if s["kind"] == "CLIENT"]
    assert clients, "no webhook CLIENT span in the Pay trace"
    hooks = [
        s
        for s in commerce
        if s["kind"] == "SERVER"
        and s["attributes"].get("http.target", "").startswith(f"/webhooks/payments/{org_id}")
    ]
    assert hooks, "no webhook SERVER span in the Pay trace"
    publish = [
        s
        for s in commerce
        if s["kind"] == "PRODUCER" and s["name"].startswith("commerce.entitlement.changed")
    ]
    assert len(publish) == 1, f"activation publish span: {publish}"
    message_id = publish[0]["attributes"]["messaging.message.id"]
    consume = [
        s
        for s in spans
        if s["service"] == "learning"
        and s["kind"] == "CONSUMER"
        and s["attributes"].get("messaging.message.id") == message_id
    ]
    assert consume, "learning consume span in the Pay trace"
    by_id = {s["span_id"]: s for s in spans}
    parents = [h for h in hooks if _descends(publish[0], h, by_id)]
    assert len(parents) == 1, f"the activation publish under one webhook span: {hooks}"
    client = by_id.get(parents[0]["parent_span_id"] or "")
    assert client is not None
    assert client in clients, "the webhook SERVER span's parent is not the sender's CLIENT span"
    return pay[0], client, parents[0], publish[0], consume[0]


# --- journey 4: declined, then bought again -------------------------------------------------------


def test_j4_declined_payment_revokes_and_rebuy_reactivates(
    suite: Suite, paid_course: Course
) -> None:
    buyer = suite.user("decliner")
    first = suite.checkout(buyer, paid_course)
    declined = suite.pay_page(first["paymentPageUrl"], "Decline")
    assert declined.status_code == 200, declined.text
    assert "declined" in declined.text
    eventually(
        lambda: problem(
            buyer.get(f"/me/courses/{paid_course.course_id}"), 403, "ENTITLEMENT_REVOKED"
        ),
        what="the failed payment revokes the entitlement",
    )
    revoked = suite.entitlement(paid_course, buyer)
    assert revoked["status"] == "revoked"
    assert revoked["accessRevokedAt"] is not None

    second = suite.checkout(buyer, paid_course)
    assert second["entitlementId"] == first["entitlementId"]
    assert second["paymentPageUrl"] != first["paymentPageUrl"]
    assert suite.pay_page(second["paymentPageUrl"], "Pay").status_code == 200
    player = suite.player(buyer, paid_course)
    assert player["entitlement"]["id"] == first["entitlementId"]
    ent = suite.entitlement(paid_course, buyer)
    assert ent["entitlementId"] == first["entitlementId"]
    assert ent["status"] == "active"
    assert ent["accessRevokedAt"] is None
    problem(buyer.post(f"/courses/{paid_course.course_id}/checkout"), 409, "COURSE_ALREADY_OWNED")
    # one receipt: only the completed payment has one
    eventually(lambda: _one(suite.mails_to(buyer.email)), what="one receipt")


# --- journey 5: refund / staff revoke, then archive -----------------------------------------------


def test_j5_refund_and_revoke_then_archive(suite: Suite, paid_course: Course) -> None:
    refunded = suite.user("refunded")
    keeper = suite.user("keeper")
    revoked = suite.user("revoked")
    course = paid_course
    sessions: dict[str, str] = {}
    for buyer in (refunded, keeper, revoked):
        checkout = suite.checkout(buyer, course)
        sessions[buyer.sub] = session_id(checkout["paymentPageUrl"])
        assert suite.pay_page(checkout["paymentPageUrl"], "Pay").status_code == 200
    for buyer in (refunded, keeper, revoked):
        suite.player(buyer, course)

    # refund: a signed payment.refunded webhook from the provider
    body, headers = suite.signed_webhook(
        course.org_id, "payment.refunded", sessions[refunded.sub], amount=4900
    )
    ack = ok(suite.anon.post(f"/webhooks/payments/{course.org_id}", content=body, headers=headers))
    assert ack["status"] == "applied"
    eventually(
        lambda: problem(
            refunded.get(f"/me/courses/{course.course_id}"), 403, "ENTITLEMENT_REVOKED"
        ),
        what="refund revokes access",
    )
    assert suite.entitlement(course, refunded)["status"] == "revoked"

    # staff revoke
    ent = suite.entitlement(course, revoked)
    done = ok(
        course.owner.post(
            f"/organizations/{course.org_id}/entitlements/{ent['entitlementId']}/revoke",
            {"reason": "chargeback"},
        )
    )
    assert done["status"] == "revoked"
    eventually(
        lambda: problem(revoked.get(f"/me/courses/{course.course_id}"), 403, "ENTITLEMENT_REVOKED"),
        what="staff revoke revokes access",
    )
    problem(
        course.owner.post(
            f"/organizations/{course.org_id}/entitlements/{ent['entitlementId']}/revoke",
            {"reason": "again"},
        ),
        409,
        "ILLEGAL_ENTITLEMENT_TRANSITION",
    )

    # archive: storefront 404, the remaining buyer keeps access
    archived = ok(course.owner.delete(f"/organizations/{course.org_id}/courses/{course.course_id}"))
    assert archived["status"] == "archived"
    eventually(
        lambda: problem(suite.anon.get(f"/public/courses/{course.course_id}"), 404),
        what="storefront 404 after archive",
    )
    player = eventually(
        lambda: _archived(ok(keeper.get(f"/me/courses/{course.course_id}"))),
        what="learning projects the archive",
    )
    assert player["entitlement"]["status"] == "active"
    ok(keeper.post(f"/me/courses/{course.course_id}/workouts/{course.workout_ids[0]}/complete", {}))
    # and nobody can buy it any more
    problem(suite.user("late").post(f"/courses/{course.course_id}/checkout"), 404)


def _archived(player: dict[str, Any]) -> dict[str, Any]:
    assert player["courseStatus"] == "archived", player["courseStatus"]
    return player


# --- journey 6: a buyer who is not a member becomes a lead ----------------------------------------


def test_j6_non_member_buyer_becomes_lead(suite: Suite, free_course: Course) -> None:
    buyer = suite.user("lead")
    suite.checkout(buyer, free_course)

    def lead() -> dict[str, Any]:
        page = ok(free_course.owner.get(f"/organizations/{free_course.org_id}/leads"))
        mine = [item for item in page["items"] if item["userId"] == buyer.sub]
        return _one(mine)

    found = eventually(lead, what="lead listed for the seller org")
    assert found["source"] == "course_purchase"
    assert found["membershipId"] is None
    assert found["email"] == buyer.email
    # the owner (a member) is not a lead of their own org
    page = ok(free_course.owner.get(f"/organizations/{free_course.org_id}/leads"))
    assert free_course.owner.sub not in {i["userId"] for i in page["items"]}
    # leads are staff-only
    problem(buyer.get(f"/organizations/{free_course.org_id}/leads"), 404)


# --- journey 7: custom course ---------------------------------------------------------------------


def test_j7_custom_course_generation_handshake_and_regen(suite: Suite) -> None:
    owner = suite.user("cgowner")
    buyer = suite.user("cgbuyer")
    org_id, _, _ = suite.organization(owner)
    code = "X" + "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(5))
    offer = eventually(
        lambda: ok(
            owner.post(
                f"/organizations/{org_id}/custom-course-offers",
                {"code": code, "title": "Sleep course", "priceInCents": 0},
            ),
            201,
        ),
        what="commerce knows the org and its staff",
    )
    assert offer["code"] == code
    purchase = ok(buyer.post(f"/custom-course-offers/{code}/checkout"), 201)
    assert purchase["paymentPageUrl"] is None
    purchase_id = purchase["purchaseId"]

    def listed() -> dict[str, Any]:
        items = ok(buyer.get("/me/custom-course-purchases"))
        items = items if isinstance(items, list) else items.get("items", items)
        return _one([p for p in items if p["purchaseId"] == purchase_id])

    row = eventually(listed, what="custom-gen projects the purchase")
    assert row["status"] == "awaiting_intake"
    assert row["courseCode"] == code

    created = ok(
        buyer.post(
            "/me/custom-courses",
            {
                "purchaseId": purchase_id,
                "intake": {
                    "goal": "Sleep deeply and wake rested",
                    "preferredName": "Sam",
                    "sessionCount": 2,
                    "sessionLength": "brief",
                },
            },
        ),
        202,
    )
    course_id = created["id"]
    problem(
        buyer.post(
            "/me/custom-courses",
            {"purchaseId": purchase_id, "intake": {"goal": "again", "preferredName": "Sam"}},
        ),
        409,
        "PURCHASE_ALREADY_USED",
    )

    def ready() -> dict[str, Any]:
        body = ok(buyer.get(f"/me/custom-courses/{course_id}"))
        assert body["status"] == "ready", body.get("progress")
        return body  # type: ignore[no-any-return]

    course = eventually(ready, timeout=120, what="generation completes")
    audio = course["data"]["audio_files"]
    assert len(audio) == 2
    s3 = suite.s3()
    for entry in audio:
        obj = s3.get_object(Bucket="coursemesh-audio", Key=entry["object_key"])
        blob = obj["Body"].read()
        assert hashlib.md5(blob).hexdigest() == entry["checksum"]
        assert len(blob) == entry["size_bytes"]
    canonical = json.dumps(
        course["data"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert hashlib.md5(canonical).hexdigest() == course["checksum"]
    assert len(canonical) == course["fileSizeBytes"]
    old_checksum = course["checksum"]
    _one_object_per_audio(s3, course_id, {a["id"] for a in audio})

    same = ok(
        buyer.post(
            "/me/custom-courses/handshake",
            {"courses": [{"id": course_id, "checksum": old_checksum}]},
        )
    )
    assert same["changed"] == []
    assert same["unchangedCount"] == 1

    target = audio[0]
    request = ok(
        buyer.post(
            f"/me/custom-courses/{course_id}/regen-requests",
            {"audioId": target["id"], "reason": "The voice skipped a word"},
        ),
        201,
    )
    approved = eventually(
        lambda: ok(
            owner.post(f"/organizations/{org_id}/regen-requests/{request['id']}/approve", {})
        ),
        what="custom-gen knows the owner is staff",
    )
    assert approved["status"] in ("approved", "completed")

    def changed() -> dict[str, Any]:
        answer = ok(
            buyer.post(
                "/me/custom-courses/handshake",
                {"courses": [{"id": course_id, "checksum": old_checksum}]},
            )
        )
        return _one(answer["changed"])

    fresh = eventually(changed, timeout=120, what="regen swaps the audio file")
    assert fresh["id"] == course_id
    assert fresh["checksum"] != old_checksum
    new_entry = next(a for a in fresh["data"]["audio_files"] if a["id"] == target["id"])
    assert new_entry["generation"] == 2
    assert new_entry["object_key"] != target["object_key"]
    blob = s3.get_object(Bucket="coursemesh-audio", Key=new_entry["object_key"])["Body"].read()
    assert hashlib.md5(blob).hexdigest() == new_entry["checksum"]
    eventually(
        lambda: _one_object_per_audio(s3, course_id, {a["id"] for a in audio}),
        what="old generation deleted: one object per audio id",
    )


def _one_object_per_audio(s3: Any, course_id: str, audio_ids: set[str]) -> None:
    listing = s3.list_objects_v2(
        Bucket="coursemesh-audio", Prefix=f"custom-courses/{course_id}/audio/"
    )
    keys = [o["Key"] for o in listing.get("Contents", [])]
    per_audio: dict[str, int] = {}
    for key in keys:
        audio_id = key.split("/")[3]
        per_audio[audio_id] = per_audio.get(audio_id, 0) + 1
    assert per_audio == dict.fromkeys(audio_ids, 1), keys


# --- journey 8: hostile ---------------------------------------------------------------------------


def test_j8_hostile_callers_change_nothing(suite: Suite, tmp_path: Path) -> None:
    course_a = suite.course(price_cents=1500, name="Course A")
    course_b = suite.course(price_cents=0, name="Course B")
    owner_buyer = suite.user("victim")
    intruder = suite.user("intruder")

    # another user's token on someone's player course
    suite.checkout(owner_buyer, course_b)
    before = suite.player(owner_buyer, course_b)
    problem(intruder.get(f"/me/courses/{course_b.course_id}"), 404, "COURSE_NOT_OWNED")
    problem(intruder.post(f"/me/courses/{course_b.course_id}/start", {}), 404, "COURSE_NOT_OWNED")
    problem(
        intruder.post(
            f"/me/courses/{course_b.course_id}/workouts/{course_b.workout_ids[0]}/complete", {}
        ),
        404,
        "COURSE_NOT_OWNED",
    )
    assert ok(owner_buyer.get(f"/me/courses/{course_b.course_id}")) == before

    # a buyer probing a workout of the org outside the course
    outside = suite.workout(course_b.owner, course_b.org_id, "Not in the course")
    problem(
        owner_buyer.get(f"/me/courses/{course_b.course_id}/workouts/{outside}"),
        404,
        "WORKOUT_NOT_IN_COURSE",
    )
    # staff of org B probing org A's workout ids under their own org, and org A directly
    for wid in course_a.workout_ids:
        problem(
            course_b.owner.get(f"/organizations/{course_b.org_id}/workouts/{wid}"),
            404,
            "WORKOUT_NOT_FOUND",
        )
        problem(course_b.owner.get(f"/organizations/{course_a.org_id}/workouts/{wid}"), 404)
    problem(
        course_b.owner.post(
            f"/organizations/{course_b.org_id}/courses/{course_b.course_id}/days",
            {"dayOffset": 1, "workoutIds": [course_a.workout_ids[0]]},
        ),
        422,
        "UNKNOWN_WORKOUT",
    )

    # a cross-org webhook: org B's URL and secret, naming org A's pending checkout
    victim = suite.user("pending")
    pending = suite.checkout(victim, course_a)
    sid = session_id(pending["paymentPageUrl"])
    entitlement_before = suite.entitlement(course_a, victim)
    assert entitlement_before["status"] == "pending"
    body, headers = suite.signed_webhook(
        course_b.org_id,
        "payment.completed",
        sid,
        amount=1500,
        metadata={"courseEntitlementId": pending["entitlementId"]},
    )
    problem(
        suite.anon.post(f"/webhooks/payments/{course_b.org_id}", content=body, headers=headers),
        403,
        "WEBHOOK_CROSS_ORG",
    )
    # org A's URL with org B's secret: the signature does not verify
    problem(
        suite.anon.post(f"/webhooks/payments/{course_a.org_id}", content=body, headers=headers),
        400,
        "WEBHOOK_SIGNATURE_INVALID",
    )
    assert suite.entitlement(course_a, victim) == entitlement_before
    # learning learns of the pending entitlement by event: wait for it, and it stays pending
    eventually(
        lambda: problem(
            victim.get(f"/me/courses/{course_a.course_id}"), 403, "ENTITLEMENT_PENDING"
        ),
        what="learning sees the victim's pending entitlement",
    )

    # a replayed webhook: the genuine completion, then the same delivery again
    body, headers = suite.signed_webhook(course_a.org_id, "payment.completed", sid, amount=1500)
    first = ok(
        suite.anon.post(f"/webhooks/payments/{course_a.org_id}", content=body, headers=headers)
    )
    assert first["status"] == "applied"
    active = suite.entitlement(course_a, victim)
    assert active["status"] == "active"
    replay = ok(
        suite.anon.post(f"/webhooks/payments/{course_a.org_id}", content=body, headers=headers)
    )
    assert replay["status"] == "duplicate"
    assert suite.entitlement(course_a, victim) == active
    suite.player(victim, course_a)
    eventually(lambda: _one(suite.mails_to(victim.email)), what="one receipt for the payment")

    # a forged token (right shape, wrong key)
    forged_identity = DevIdentity(tmp_path / "forged-keys")
    forged = forged_identity.mint_token(owner_buyer.sub, email=owner_buyer.email)
    for path in (f"/me/courses/{course_b.course_id}", f"/organizations/{course_b.org_id}/leads"):
        problem(
            suite.anon.get(path, headers={"authorization": f"Bearer {forged}"}),
            401,
            "INVALID_TOKEN",
        )
    problem(
        suite.anon.post(
            "/organizations",
            json={"name": "Forged", "slug": "forged-x", "currency": "EUR"},
            headers={"authorization": f"Bearer {forged}"},
        ),
        401,
        "INVALID_TOKEN",
    )
    problem(suite.anon.get(f"/me/courses/{course_b.course_id}"), 401, "MISSING_TOKEN")

    # an oversized body: refused by the gateway, nothing created
    slug = f"big-{uuid.uuid4().hex[:10]}"
    huge = json.dumps(
        {"name": "Big", "slug": slug, "currency": "EUR", "pad": "x" * (1024 * 1024 + 10)}
    )
    problem(
        intruder.post("/organizations", content=huge, headers={"content-type": "application/json"}),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    created = ok(
        intruder.post("/organizations", {"name": "Small", "slug": slug, "currency": "EUR"}), 201
    )
    assert created["slug"] == slug  # the slug was not taken by the refused request
    assert ok(owner_buyer.get(f"/me/courses/{course_b.course_id}")) == before


# --- across the session: no duplicates ------------------------------------------------------------


def test_z_no_duplicate_receipts(suite: Suite) -> None:
    """Runs last in each topology: every receipt sent so far went out exactly once."""
    assert suite.stack.smtp is not None
    messages = suite.stack.smtp.mailbox.messages()
    assert messages, "journeys 3-5 and 8 send receipts"
    keys = [(str(m["To"]), str(m["Subject"]), _reference(m)) for m in messages]
    assert len(keys) == len(set(keys)), f"duplicate receipts: {keys}"


def _reference(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    match = re.search(r"Reference: (\S+)", text)
    assert match, text
    return match.group(1)
