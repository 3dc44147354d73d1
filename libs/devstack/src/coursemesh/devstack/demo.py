"""``coursemesh demo``: sample data on a running stack, through the gateway's public API only.

It does what an organization's owner and a buyer would do with a client, one call after the
other (each waiting for the previous answer, so every call sees the earlier ones:
docs/consistency.md), and never writes to a database:

1. the owner founds the organization "Peak Form Studio", adds a workout library, builds a
   14-day course (rest days included), prices and publishes it, and onboards the
   organization's payment account at the sandbox provider (as a browser would: onboarding
   link, the provider's form, the link again);
2. a buyer checks the course out, presses Pay on the sandbox's hosted page, waits (with a
   deadline) for the provider's webhook to activate the entitlement, starts the course and
   completes a few items in the player;
3. the owner publishes a free course too, which the buyer adds to their library;
4. a custom course: the owner creates a free offer, the buyer buys it and submits the intake;
   audio generation is asynchronous, so it is waited for within a bound and reported as
   pending when not done (never a failure of the demo).

Every run creates a new set (a new organization, slug ``peak-form-studio-<6 hex>``, with new
courses) for the same two users (``user_demo_owner`` and ``user_demo_buyer`` by default), so
running it twice is harmless: the buyer's library then holds both runs' courses.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from coursemesh.devstack.forms import parse_forms
from coursemesh.devstack.httpfile import NoRedirect

ORG_NAME = "Peak Form Studio"
OWNER_SUB = "user_demo_owner"
BUYER_SUB = "user_demo_buyer"
PRICE_CENTS = 4900
CURRENCY = "EUR"
COURSE_DAYS = 14
PAYMENT_TIMEOUT = 60.0  # the sandbox's webhook is delivered asynchronously
CUSTOM_TIMEOUT = 90.0  # audio generation with the local speech engine
WORKOUTS: tuple[tuple[str, str, int], ...] = (
    ("Mobility Flow", "Joints and hips, slow and controlled", 15),
    ("Strength Foundations", "Squat, hinge, push, pull", 30),
    ("Core Stability", "Planks, dead bugs and carries", 20),
    ("Easy Run", "Conversational pace, flat route", 25),
    ("Yoga Stretch", "Long holds to close the week", 20),
)
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

#: Mints a token for (sub, email, name), as ``coursemesh token`` does.
TokenMinter = Callable[[str, str, str], str]


class DemoError(Exception):
    """A step of the demo failed (the message names the request and the answer)."""


class DemoProgress(Protocol):
    def step(self, message: str) -> None:
        """A step begins."""

    def done(self, message: str) -> None:
        """A step finished."""


class _Silent:
    def step(self, message: str) -> None:
        pass

    def done(self, message: str) -> None:
        pass


# --- HTTP (stdlib only: no redirects followed, every status returned) -------------------------


@dataclass
class Response:
    method: str
    path: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


_OPENER = urllib.request.build_opener(NoRedirect())


class Client:
    """One client of the gateway, with or without a bearer token."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        form: bool = False,
    ) -> Response:
        sent = {"accept": "application/json", **(headers or {})}
        data: bytes | None = None
        if form:
            data = b""
            sent["content-type"] = "application/x-www-form-urlencoded"
            sent["accept"] = "text/html"
        elif body is not None:
            data = json.dumps(body).encode()
            sent["content-type"] = "application/json"
        elif method in ("POST", "PUT", "PATCH"):
            data = b""
        if self.token:
            sent["authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base_url + path, data=data, headers=sent, method=method)
        try:
            with _OPENER.open(req, timeout=self.timeout) as answer:
                return Response(method, path, answer.status, dict(answer.headers), answer.read())
        except urllib.error.HTTPError as exc:
            return Response(method, path, exc.code, dict(exc.headers), exc.read())
        except OSError as exc:
            raise DemoError(f"{method} {self.base_url}{path}: {exc}") from exc

    def expect(
        self, method: str, path: str, body: Any = None, *, status: int = 200, **kw: Any
    ) -> Any:
        answer = self.request(method, path, body, **kw)
        if answer.status != status:
            raise DemoError(
                f"{method} {path} -> {answer.status} (expected {status}): {answer.text[:600]}"
            )
        return answer.json()


def _token_header(answer: Response) -> dict[str, str]:
    token = answer.headers.get("consistency-token") or answer.headers.get("Consistency-Token")
    return {"consistency-token": token} if token else {}


# --- the hosted pages' forms ----------------------------------------------------------------


def _submit(anon: Client, page_url: str, button: str | None) -> Response:
    """Open a hosted page as a browser would and submit its POST form (the one of ``button``)."""
    path = urlsplit(page_url).path
    page = anon.request("GET", path, headers={"accept": "text/html"})
    if page.status != 200:
        raise DemoError(f"GET {path} -> {page.status}: {page.text[:600]}")
    forms = [f for f in parse_forms(page.text) if f.method == "post" and button in (None, f.button)]
    if not forms:
        raise DemoError(f"no form {button or ''!s} on {path}")
    target = urlsplit(urljoin(page_url, forms[0].action)).path
    return anon.request("POST", target, form=True)


# --- the result -----------------------------------------------------------------------------


@dataclass
class CustomCourseDemo:
    status: str  # ready | pending | failed | skipped
    detail: str = ""
    offer_code: str | None = None
    purchase_id: str | None = None
    course_id: str | None = None


@dataclass
class DemoResult:
    gateway_url: str
    org_id: str
    org_name: str
    org_slug: str
    owner_sub: str
    owner_token: str
    buyer_sub: str
    buyer_token: str
    workout_ids: list[str]
    course_id: str
    price_cents: int
    account_id: str
    payment_page_url: str
    success_url: str
    entitlement_id: str
    progress: dict[str, Any]
    free_course_id: str
    free_entitlement_id: str
    custom: CustomCourseDemo
    seconds: float = 0.0
    completed_items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def storefront_url(self) -> str:
        return f"{self.gateway_url}/public/courses/{self.course_id}"

    @property
    def player_url(self) -> str:
        return f"{self.gateway_url}/me/courses/{self.course_id}"


# --- the demo -------------------------------------------------------------------------------


def _curriculum(workouts: list[str]) -> list[dict[str, Any]]:
    """14 days: two workouts on day 0, one a day after that, a rest day closing each week."""
    days: list[dict[str, Any]] = []
    for day in range(COURSE_DAYS):
        if day % 7 == 6:
            days.append({"dayOffset": day, "isRest": True})
        elif day == 0:
            days.append({"dayOffset": 0, "workoutIds": workouts[:2]})
        else:
            days.append({"dayOffset": day, "workoutIds": [workouts[day % len(workouts)]]})
    return days


def run_demo(
    gateway_url: str,
    mint: TokenMinter,
    *,
    progress: DemoProgress | None = None,
    owner_sub: str = OWNER_SUB,
    buyer_sub: str = BUYER_SUB,
    payment_timeout: float = PAYMENT_TIMEOUT,
    custom_timeout: float = CUSTOM_TIMEOUT,
    poll_interval: float = 0.25,
) -> DemoResult:
    """Create the demo set on the stack behind ``gateway_url`` (see the module's doc); raise
    :class:`DemoError` naming the failed request. ``custom_timeout=0`` skips the custom course."""
    began = time.monotonic()
    show = progress or _Silent()
    base = gateway_url.rstrip("/")
    owner_token = mint(owner_sub, f"{owner_sub}@demo.coursemesh.local", "Olivia Owner")
    buyer_token = mint(buyer_sub, f"{buyer_sub}@demo.coursemesh.local", "Ben Buyer")
    owner, buyer, anon = Client(base, owner_token), Client(base, buyer_token), Client(base)

    show.step(f"organization {ORG_NAME}")
    run_id = secrets.token_hex(3)
    slug = f"peak-form-studio-{run_id}"
    org = owner.expect(
        "POST",
        "/organizations",
        {"name": ORG_NAME, "slug": slug, "currency": CURRENCY},
        status=201,
    )
    org_id = str(org["id"])
    show.done(f"organization {ORG_NAME} ({slug}), owner {owner_sub}")

    show.step("workout library")
    workouts = [
        str(
            owner.expect(
                "POST",
                f"/organizations/{org_id}/workouts",
                {"title": title, "description": text, "durationMinutes": minutes},
                status=201,
            )["id"]
        )
        for title, text, minutes in WORKOUTS
    ]
    show.done(f"{len(workouts)} workouts")

    show.step(f"{COURSE_DAYS}-day course")
    course_path = f"/organizations/{org_id}/courses"
    course = owner.expect(
        "POST",
        course_path,
        {
            "name": "14-Day Strength Kickstart",
            "description": "Two weeks of short, progressive sessions with a rest day each week.",
            "durationDays": COURSE_DAYS,
        },
        status=201,
    )
    course_id = str(course["id"])
    for day_body in _curriculum(workouts):
        owner.expect("POST", f"{course_path}/{course_id}/days", day_body)
    owner.expect("PATCH", f"{course_path}/{course_id}/price", {"priceInCents": PRICE_CENTS})
    published = owner.request("POST", f"{course_path}/{course_id}/publish")
    if published.status != 200:
        raise DemoError(f"publish -> {published.status}: {published.text[:600]}")
    handover = _token_header(published)  # the owner's writes, for other clients' first reads
    show.done(f"course {course_id} published at {PRICE_CENTS / 100:.2f} {CURRENCY}")

    show.step("payment account onboarding (sandbox)")
    onboarding = f"/organizations/{org_id}/payments/onboarding"
    started = owner.expect("POST", onboarding)
    submitted = _submit(anon, str(started["url"]), None)
    if submitted.status != 303:
        raise DemoError(f"onboarding form -> {submitted.status}: {submitted.text[:600]}")
    account = owner.expect("POST", onboarding)["account"]
    if account.get("status") != "enabled":
        raise DemoError(f"the payment account is not enabled after onboarding: {account}")
    account_id = str(account["accountId"])
    show.done(f"payment account {account_id} enabled")

    show.step("buyer pays through the hosted page")
    checkout = buyer.expect("POST", f"/courses/{course_id}/checkout", headers=handover, status=201)
    page_url = str(checkout["paymentPageUrl"])
    entitlement_id = str(checkout["entitlementId"])
    paid = _submit(anon, page_url, "Pay")
    if paid.status != 303:
        raise DemoError(f"Pay on {page_url} -> {paid.status}: {paid.text[:600]}")
    success_url = paid.headers.get("location") or paid.headers.get("Location") or ""
    show.done(f"paid on {page_url}")

    show.step("waiting for the provider's webhook")
    deadline = time.monotonic() + payment_timeout
    while True:
        view = buyer.request("GET", f"/me/courses/{course_id}")
        if view.status == 200 and view.json()["entitlement"]["status"] == "active":
            break
        if time.monotonic() >= deadline:
            raise DemoError(
                f"the payment was not confirmed within {payment_timeout:.0f}s: "
                f"GET /me/courses/{course_id} -> {view.status} {view.text[:300]}"
            )
        time.sleep(poll_interval)
    show.done(f"entitlement {entitlement_id} active")

    show.step("buyer's progress in the player")
    player = f"/me/courses/{course_id}"
    buyer.expect("POST", f"{player}/start", {})
    completed: list[dict[str, Any]] = []
    for day, workout in ((0, workouts[0]), (0, workouts[1]), (1, workouts[1])):
        done = buyer.expect("POST", f"{player}/workouts/{workout}/complete", {"dayOffset": day})
        completed.append({"dayOffset": day, "workoutId": workout, "itemId": done["itemId"]})
    course_progress = dict(done["progress"])
    show.done(
        f"started; {course_progress['completed']} of {course_progress['total']} items complete"
    )

    show.step("free course")
    free = owner.expect(
        "POST",
        course_path,
        {
            "name": "Free Mobility Taster",
            "description": "Three days to try the studio.",
            "durationDays": 3,
        },
        status=201,
    )
    free_id = str(free["id"])
    for day in range(3):
        owner.expect(
            "POST", f"{course_path}/{free_id}/days", {"dayOffset": day, "workoutIds": [workouts[0]]}
        )
    owner.expect("PATCH", f"{course_path}/{free_id}/price", {"priceInCents": 0})
    handover = _token_header(owner.request("POST", f"{course_path}/{free_id}/publish"))
    free_checkout = buyer.expect(
        "POST", f"/courses/{free_id}/checkout", headers=handover, status=201
    )
    show.done(f"free course {free_id} in the buyer's library")

    custom = _custom_course(owner, buyer, org_id, show, custom_timeout, poll_interval)
    return DemoResult(
        gateway_url=base,
        org_id=org_id,
        org_name=ORG_NAME,
        org_slug=slug,
        owner_sub=owner_sub,
        owner_token=owner_token,
        buyer_sub=buyer_sub,
        buyer_token=buyer_token,
        workout_ids=workouts,
        course_id=course_id,
        price_cents=PRICE_CENTS,
        account_id=account_id,
        payment_page_url=page_url,
        success_url=success_url,
        entitlement_id=entitlement_id,
        progress=course_progress,
        free_course_id=free_id,
        free_entitlement_id=str(free_checkout["entitlementId"]),
        custom=custom,
        seconds=time.monotonic() - began,
        completed_items=completed,
    )


def _custom_course(
    owner: Client,
    buyer: Client,
    org_id: str,
    show: DemoProgress,
    timeout: float,
    poll_interval: float,
) -> CustomCourseDemo:
    """The custom course flow; never raises: its outcome is a state of the result."""
    if timeout <= 0:
        return CustomCourseDemo("skipped", "not asked for")
    show.step(f"custom course (audio generation, up to {timeout:.0f}s)")
    result = CustomCourseDemo("failed")
    try:
        code = "X" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(5))
        offer = owner.request(
            "POST",
            f"/organizations/{org_id}/custom-course-offers",
            {"code": code, "title": "Deep Sleep Reset", "priceInCents": 0},
        )
        if offer.status != 201:
            raise DemoError(f"offer -> {offer.status}: {offer.text[:300]}")
        result.offer_code = code
        purchase = buyer.expect(
            "POST",
            f"/custom-course-offers/{code}/checkout",
            headers=_token_header(offer),
            status=201,
        )
        result.purchase_id = str(purchase["purchaseId"])
        created = buyer.expect(
            "POST",
            "/me/custom-courses",
            {
                "purchaseId": result.purchase_id,
                "intake": {
                    "goal": "Sleep deeply and wake rested",
                    "preferredName": "Ben",
                    "sessionCount": 2,
                    "sessionLength": "brief",
                },
            },
            status=202,
        )
        result.course_id = str(created["id"])
        deadline = time.monotonic() + timeout
        status = "generating"
        while time.monotonic() < deadline:
            status = str(buyer.expect("GET", f"/me/custom-courses/{result.course_id}")["status"])
            if status in ("ready", "failed"):
                break
            time.sleep(max(poll_interval, 0.5))
        if status == "ready":
            result.status = "ready"
            show.done(f"custom course {result.course_id} ready")
        elif status == "failed":
            result.detail = "generation failed"
            show.done(f"custom course {result.course_id}: generation failed")
        else:
            result.status = "pending"
            result.detail = f"still {status} after {timeout:.0f}s"
            show.done(f"custom course {result.course_id}: {result.detail} (it keeps going)")
    except Exception as exc:  # the custom course never fails the demo
        result.detail = str(exc)
        show.done(f"custom course not completed: {exc}")
    return result


# --- the running stack ----------------------------------------------------------------------


def running_gateway(data_dir: Path) -> str:
    """The gateway URL of the stack running on ``data_dir`` (its ``stack.json``); raise
    :class:`DemoError` when none runs there."""
    from coursemesh.devstack.process import pid_alive
    from coursemesh.devstack.stack import read_stack_json

    info = read_stack_json(data_dir)
    if info is None:
        raise DemoError(f"no stack.json in {data_dir}: start the stack first (`make up`)")
    supervisor = info.get("supervisor_pid")
    alive = isinstance(supervisor, int) and pid_alive(supervisor)
    url = info.get("gateway_url") or info.get("gateway", {}).get("url")
    if info.get("state") != "running" or not alive or not url:
        raise DemoError(f"the stack of {data_dir} is not running: start it first (`make up`)")
    return str(url)
