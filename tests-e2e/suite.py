"""The running stack as a client sees it, through the gateway only, with tokens minted by the
stack's development identity (plus its mailbox, S3 bucket and exported spans).

A client that waits for each response before its next call sees its own writes in every
service (docs/consistency.md), so the helpers call back to back and never retry. The only
waits are for what is truly asynchronous, each with a deadline and its reason
(:func:`eventually`): the payment provider's webhook, audio generation, email delivery, span
export, and another client's write reaching a reader who holds no token of it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx
from standardwebhooks import Webhook

from coursemesh.devstack.forms import parse_forms
from coursemesh.devstack.stack import Stack

T = TypeVar("T")
DEADLINE = 60.0  # seconds an eventually-consistent effect may take on a loaded 2-core box
PROBLEM_JSON = "application/problem+json"


# --- polling --------------------------------------------------------------------------------------


def eventually(
    probe: Callable[[], T],
    *,
    why: str,
    timeout: float = DEADLINE,
    interval: float = 0.05,
    what: str = "",
) -> T:
    """Call ``probe`` until it returns without raising ``AssertionError`` (its value is
    returned); after ``timeout`` seconds re-raise the last failure. Only for a step that is
    asynchronous by nature, named in ``why``: never to cover our own cross-service lag.
    Synchronisation by condition and deadline: the interval only paces the polling."""
    assert why.strip(), "say why this step is asynchronous"
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

    def put(self, path: str, json_body: Any, **kw: Any) -> httpx.Response:
        return self.client.put(path, json=json_body, **kw)

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


def token_of(response: httpx.Response) -> dict[str, str]:
    """The consistency token of a write's response, as headers for a later request (another
    client's, which then reflects that write: docs/consistency.md)."""
    token = response.headers.get("consistency-token")
    assert token, f"no consistency token on {response.request.method} {response.request.url}"
    return {"consistency-token": token}


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
    #: the organization's payment account at the (sandbox) provider; None: not onboarded
    account_id: str | None = None


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
        payments: bool | None = None,
    ) -> Course:
        """An organization with a published, priced 3-day course (day 0: A, B; day 1: rest;
        day 2: A again), once commerce accepts checkouts for it and the storefront shows it.
        ``payments`` (default: when the course is paid): the organization's payment account
        is onboarded first, without which a paid checkout is refused."""
        owner = owner or self.user("owner")
        org_id, org_name, slug = self.organization(owner)
        if payments is None:
            payments = price_cents > 0
        account_id = self.enable_payments(owner, org_id)["accountId"] if payments else None
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
        ok(
            owner.patch(
                f"/organizations/{org_id}/courses/{cid}/price", {"priceInCents": price_cents}
            )
        )
        published = ok(owner.post(f"/organizations/{org_id}/courses/{cid}/publish"))
        assert published["status"] == "published"
        self.storefront(cid)
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
            account_id=account_id,
        )

    def storefront(self, course_id: str) -> dict[str, Any]:
        body: dict[str, Any] = ok(self.anon.get(f"/public/courses/{course_id}"))
        return body

    def checkout(self, buyer: User, course: Course, **headers: str) -> dict[str, Any]:
        body: dict[str, Any] = ok(
            buyer.post(f"/courses/{course.course_id}/checkout", headers=headers), 201
        )
        return body

    def player(self, buyer: User, course: Course, **headers: str) -> dict[str, Any]:
        """The buyer's player view: every catalog event of the course is in it (its last
        curriculum, its publication), since commerce sold it only after seeing them."""
        view: dict[str, Any] = ok(buyer.get(f"/me/courses/{course.course_id}", headers=headers))
        assert view["curriculumVersion"] >= course.curriculum_version, view
        assert view["courseStatus"] in ("published", "archived"), view
        return view

    def player_once_paid(self, buyer: User, course: Course) -> dict[str, Any]:
        """The player once the provider's webhook has activated the buyer's entitlement."""

        def active() -> dict[str, Any]:
            view = self.player(buyer, course)
            assert view["entitlement"]["status"] == "active", view["entitlement"]
            return view

        return eventually(
            active,
            why="the payment provider confirms the payment by a webhook of its own, later",
            what="the paid entitlement is active in the player",
        )

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

    def enable_payments(self, owner: User, org_id: str) -> dict[str, Any]:
        """Onboard the organization's payment account at the sandbox provider, as its owner
        does before selling anything paid (until then a paid checkout is refused with 409
        ``PAYMENTS_NOT_ENABLED``); the account as commerce then shows it, enabled.

        As with Stripe Connect: ask for an onboarding link, submit the provider's onboarding
        form as a browser would (its 303 to the return page is not followed), then ask for a
        link again. That second call reads the account back from the provider, so it answers
        the account enabled at once: no waiting for the provider's ``account.updated`` webhook,
        which is delivered asynchronously and finds nothing left to change."""
        path = f"/organizations/{org_id}/payments/onboarding"
        started = ok(owner.post(path))
        account = started["account"]
        assert account["provider"] == "sandbox", account
        assert account["accountId"], account
        link = urlsplit(started["url"])
        assert f"{link.scheme}://{link.netloc}" == self.base_url, started["url"]
        assert link.path == f"/pay/accounts/{account['accountId']}/onboarding", started["url"]
        page = self.anon.get(link.path, headers={"accept": "text/html"})
        assert page.status_code == 200, page.text
        [form] = [f for f in parse_forms(page.text) if f.method == "post"]
        submitted = self.anon.post(
            urlsplit(urljoin(started["url"], form.action)).path,
            content=b"",
            headers={"content-type": "application/x-www-form-urlencoded", "accept": "text/html"},
        )
        assert submitted.status_code == 303, f"{submitted.status_code}: {submitted.text[:800]}"
        assert submitted.headers["location"] == f"{self.base_url}/payments/onboarding/return"
        enabled: dict[str, Any] = ok(owner.post(path))["account"]
        assert enabled["accountId"] == account["accountId"], (account, enabled)
        assert enabled["status"] == "enabled", enabled
        assert enabled["chargesEnabled"], enabled
        assert enabled["payoutsEnabled"], enabled
        return enabled

    def pay(self, payment_page_url: str, **headers: str) -> str:
        """Press Pay on the hosted page: the sandbox sends the buyer on (303) to the checkout's
        success page, by default the platform's own; its URL (not followed)."""
        paid = self.pay_page(payment_page_url, "Pay", **headers)
        assert paid.status_code == 303, f"{paid.status_code}: {paid.text[:800]}"
        location = paid.headers["location"]
        assert location.startswith(f"{self.base_url}/checkout/success?session="), location
        return location

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
        account: str | None,
        metadata: dict[str, str] | None = None,
        event_id: str | None = None,
        secret_org: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """A sandbox webhook as the provider sends it: ``account`` is the connected account the
        payment happened on (the seller's), signed with ``secret_org``'s secret (default: the
        organization whose URL it goes to)."""
        event_id = event_id or f"evt_{uuid.uuid4().hex}"
        body = json.dumps(
            {
                "id": event_id,
                "type": event_type,
                "account": account,
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


def session_id(payment_page_url: str) -> str:
    match = re.search(r"/pay/([^/?#]+)$", payment_page_url)
    assert match, payment_page_url
    return match.group(1)
