"""Chaos drill: ``kill -9`` the suite's processes under a mixed load, then prove from the
databases, the event streams, the mail sink and S3 that every acknowledged write took effect
exactly once and that every projection converged.

One run = a fresh stack (``coursemesh.devstack.stack.Stack``, own temp data dir, never the
shared e2e or ``make up`` one), seeded through the gateway (the organization's payment account
onboarded at the sandbox first, as a seller must before a paid checkout), then for
``duration`` seconds:

- ``clients`` threads, each an ``httpx.Client`` against the gateway, no retries: free
  checkouts and paid checkouts (each a new buyer; the paid ones pay on the sandbox's hosted
  page: GET it, POST its "Pay" form, answered 303 to the checkout's success page), workout
  completions in the player, custom-course purchases (offer checkout + intake) and, once a
  custom course is ready, a regen request that the organization's owner approves. Every call
  is recorded (request id, idempotency key, ids, status, time);
- a killer thread (seeded RNG) ``SIGKILL``s one victim at a time: a service replica, NATS or
  PostgreSQL (the outbox relay and every worker run inside the service processes, so they are
  killed with them). Its first kills are one of each kind, in random order;
- the thread that started the stack calls ``Stack.heal()`` every 0.1 s (the project's
  supervisor restarts what was killed). A victim the supervisor did not restart within
  ``heal_grace`` seconds is restarted by the drill itself, and the report says so.

Then it polls (deadline, no sleeps as synchronisation) until the projections have converged
(outboxes published, every durable consumer caught up, stream contents = outbox rows, each
projection equal to its source) and until the asynchronous effects have settled (payment
webhooks delivered, receipts mailed, audio generated), and audits every recorded write:
acknowledged with its effect exactly once, lost, duplicated, not acknowledged but applied
(ambiguous: the answer was lost with the process), and effects nobody asked for (phantom).

    uv run python -m bench chaos [--runs 3] [--replicas 1,2] [--duration 60] [--clients 8]
                                 [--seed N] [--keep]

``make chaos`` runs the full size; ``tests-e2e/test_chaos.py`` a small one. See docs/chaos.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import hashlib
import json
import os
import queue
import random
import re
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import httpx

from bench.common import enable_payments
from coursemesh.devstack.ports import free_port
from coursemesh.devstack.process import ManagedProcess
from coursemesh.devstack.stack import Stack, StackError

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

#: The kinds of writes the load makes, in report order.
WRITES = (
    "free_checkout",
    "paid_checkout",
    "payment",
    "completion",
    "custom_purchase",
    "intake",
    "regen_request",
    "regen_approval",
)
#: What a client picks next (weights), when it can (a completion needs a free course it owns,
#: a regen a custom course of its own without one yet).
MIX = {"free": 30, "paid": 25, "completion": 25, "custom": 10, "regen": 10}
#: The free and the paid course: day 0 workouts A and B, day 1 rest, day 2 A again.
PLAN = (("A", 0), ("B", 0), ("A", 2))
PAID_PRICE_CENTS = 1900
AUDIO_BUCKET = "coursemesh-audio"
SCHEMAS = {"catalog": "CATALOG", "commerce": "COMMERCE", "learning": "LEARNING"}
SCHEMAS["customgen"] = "CUSTOMGEN"


# --- configuration ---------------------------------------------------------------------------


@dataclass
class DrillConfig:
    replicas: int = 1
    duration: float = 60.0  # seconds of load (kills happen only while it runs)
    clients: int = 8
    seed: int = 0
    first_kill: float = 2.0  # seconds into the load
    gap: tuple[float, float] = (2.0, 6.0)  # pause after a victim is back, before the next kill
    heal_grace: float = 20.0  # a victim not restarted by then is restarted by the drill
    back_timeout: float = 90.0  # a restarted victim must be ready within this
    converge_timeout: float = 180.0  # deadline for projections and asynchronous effects
    outage_grace: float = 12.0  # a 5xx this long after a victim is back is still "its" outage
    max_custom: int | None = None  # custom purchases per run (default: duration / 4)
    trace_sample_ratio: float = 0.01
    http_timeout: float = 30.0

    @property
    def custom_cap(self) -> int:
        return self.max_custom if self.max_custom is not None else max(2, int(self.duration / 4))


# --- records ---------------------------------------------------------------------------------


@dataclass
class Call:
    step: str
    method: str
    path: str
    request_id: str
    sent: float  # seconds since the load started
    done: float
    status: int | None  # None: no answer at all (connection refused/reset, timeout)
    error: str | None = None
    code: str | None = None  # problem+json code


def acknowledged(status: int | None) -> bool:
    """A write's answer that says it took effect: a 2xx, or the 303 See Other with which the
    hosted payment page's Pay form sends the buyer on to the success page."""
    return status is not None and (200 <= status < 300 or status == 303)


@dataclass
class Op:
    """One client operation: one or more calls, the ids it sent and got back."""

    id: int
    kind: str  # free | paid | completion | custom | regen
    client: int
    buyer: str
    keys: dict[str, str] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def call(self, step: str) -> Call | None:
        found = [c for c in self.calls if c.step == step]
        return found[-1] if found else None

    def acked(self, step: str) -> bool:
        c = self.call(step)
        return c is not None and acknowledged(c.status)

    def sent(self, step: str) -> bool:
        return self.call(step) is not None


@dataclass
class Kill:
    victim: str
    category: str  # service | nats | postgres
    pid: int
    at: float  # seconds since the load started
    new_pid: int | None = None
    back_at: float | None = None
    restarted_by: str = "supervisor"  # or "drill" (the supervisor did not) / "nobody"
    note: str = ""

    @property
    def downtime(self) -> float | None:
        return None if self.back_at is None else round(self.back_at - self.at, 3)


@dataclass
class Finding:
    category: str  # lost | duplicated | phantom | stuck | wrong_answer | unexplained_5xx | ...
    what: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Tally:
    sent: int = 0
    acked: int = 0
    effects: int = 0  # acknowledged, and its effect is there exactly once
    lost: int = 0  # acknowledged, effect missing (or not in the state the answer promised)
    duplicated: int = 0  # the effect is there more than once
    unacked_applied: int = 0  # no 2xx reached the client, but the write took effect (ambiguous)
    unacked_not_applied: int = 0
    refused: int = 0  # a 4xx: never expected by this load (listed as wrong answers)


# --- the seeded scenario -----------------------------------------------------------------------


@dataclass
class Scenario:
    owner: str
    owner_token: str
    org_id: str
    workouts: dict[str, str]  # "A"/"B" -> workout id
    free_course: str
    paid_course: str
    offer_code: str


class _Seed:
    def __init__(self, stack: Stack, timeout: float) -> None:
        self.stack = stack
        self.http = httpx.Client(base_url=stack.gateway_url, timeout=timeout)

    def call(self, token: str, method: str, path: str, body: Any = None, ok: int = 200) -> Any:
        response = self.http.request(
            method, path, json=body, headers={"authorization": f"Bearer {token}"}
        )
        if response.status_code != ok:
            raise RuntimeError(
                f"seeding: {method} {path} -> {response.status_code} (wanted {ok}): "
                f"{response.text[:300]}"
            )
        return response.json() if response.content else None

    def course(self, token: str, org: str, workouts: dict[str, str], name: str, price: int) -> str:
        cid = str(
            self.call(
                token,
                "POST",
                f"/organizations/{org}/courses",
                {"name": name, "description": "chaos drill", "durationDays": 3},
                ok=201,
            )["id"]
        )
        days = f"/organizations/{org}/courses/{cid}/days"
        self.call(
            token, "POST", days, {"dayOffset": 0, "workoutIds": [workouts["A"], workouts["B"]]}
        )
        self.call(token, "POST", days, {"dayOffset": 1, "isRest": True})
        self.call(token, "POST", days, {"dayOffset": 2, "workoutIds": [workouts["A"]]})
        self.call(
            token,
            "PATCH",
            f"/organizations/{org}/courses/{cid}/price",
            {"priceInCents": price},
        )
        self.call(token, "POST", f"/organizations/{org}/courses/{cid}/publish")
        self.http.get(f"/public/courses/{cid}").raise_for_status()
        return cid

    def scenario(self) -> Scenario:
        owner = f"chaos_owner_{uuid.uuid4().hex[:8]}"
        token = self.stack.identity.mint_token(owner, email=f"{owner}@chaos.example", name="Owner")
        slug = f"chaos-{uuid.uuid4().hex[:10]}"
        org = str(
            self.call(
                token,
                "POST",
                "/organizations",
                {"name": f"Chaos {slug[-4:]}", "slug": slug, "currency": "EUR"},
                ok=201,
            )["id"]
        )
        workouts = {
            label: str(
                self.call(
                    token,
                    "POST",
                    f"/organizations/{org}/workouts",
                    {"title": f"Workout {label}", "description": "d", "durationMinutes": 20},
                    ok=201,
                )["id"]
            )
            for label in ("A", "B")
        }
        enable_payments(self.http, org, {"authorization": f"Bearer {token}"})
        free = self.course(token, org, workouts, "Chaos free", 0)
        paid = self.course(token, org, workouts, "Chaos paid", PAID_PRICE_CENTS)
        code = "X" + "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(5))
        self.call(
            token,
            "POST",
            f"/organizations/{org}/custom-course-offers",
            {"code": code, "title": "Chaos calm", "priceInCents": 0},
            ok=201,
        )
        self.http.close()
        return Scenario(owner, token, org, workouts, free, paid, code)


# --- the load ----------------------------------------------------------------------------------


class _Forms(HTMLParser):
    """The forms of the hosted payment page: (action, button text)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str]] = []
        self._action: str | None = None
        self._button = ""
        self._in_button = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self._action, self._button = dict(attrs).get("action") or "", ""
        elif tag == "button":
            self._in_button = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._action is not None:
            self.forms.append((self._action, self._button))
            self._action = None
        elif tag == "button":
            self._in_button = False

    def handle_data(self, data: str) -> None:
        if self._in_button and self._action is not None:
            self._button += data.strip()


def form_action(page: str, button: str) -> str | None:
    parser = _Forms()
    parser.feed(page)
    return next((action for action, text in parser.forms if text == button), None)


@dataclass
class _Owned:
    """A free-course buyer of this client, with the completions still to make."""

    buyer: str
    token: str
    entitlement_id: str
    todo: list[tuple[str, int]]


@dataclass
class _Custom:
    buyer: str
    token: str
    course_id: str
    regen_done: bool = False


class Load:
    """The clients: their operations, recorded."""

    def __init__(self, drill: Drill, scenario: Scenario) -> None:
        self.drill = drill
        self.scenario = scenario
        self.ops: list[Op] = []
        self._lock = threading.Lock()
        self._next = 0
        self._custom_started = 0

    def _op(self, kind: str, client: int, buyer: str) -> Op:
        with self._lock:
            self._next += 1
            op = Op(self._next, kind, client, buyer)
            self.ops.append(op)
            return op

    def _reserve_custom(self) -> bool:
        with self._lock:
            if self._custom_started >= self.drill.config.custom_cap:
                return False
            self._custom_started += 1
            return True

    def run_client(self, index: int, until: float) -> None:
        cfg = self.drill.config
        rng = random.Random(f"{cfg.seed}:client:{index}")
        owned: list[_Owned] = []
        customs: list[_Custom] = []
        with httpx.Client(base_url=self.drill.gateway_url, timeout=cfg.http_timeout) as http:
            while self.drill.now() < until and not self.drill.aborted.is_set():
                kinds = {"free": MIX["free"], "paid": MIX["paid"]}
                if self._custom_started < cfg.custom_cap:
                    kinds["custom"] = MIX["custom"]
                if any(o.todo for o in owned):
                    kinds["completion"] = MIX["completion"]
                if any(not c.regen_done for c in customs):
                    kinds["regen"] = MIX["regen"]
                kind = rng.choices(list(kinds), weights=list(kinds.values()))[0]
                try:
                    if kind == "free":
                        self._free(http, index, owned)
                    elif kind == "paid":
                        self._paid(http, index)
                    elif kind == "completion":
                        self._completion(http, index, rng, owned)
                    elif kind == "custom":
                        if self._reserve_custom():
                            self._custom(http, index, customs)
                    else:
                        self._regen(http, index, rng, customs)
                except Exception:  # a bug of the drill, not of the suite: say so, go on
                    self.drill.note("client error", traceback.format_exc(limit=3))

    # one call, recorded -------------------------------------------------------------------

    def _call(
        self,
        http: httpx.Client,
        op: Op,
        step: str,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response | None:
        request_id = uuid.uuid4().hex
        sent_headers = {"x-request-id": request_id, **(headers or {})}
        if token is not None:
            sent_headers["authorization"] = f"Bearer {token}"
        sent = self.drill.now()
        try:
            response = http.request(method, path, json=body, content=content, headers=sent_headers)
        except httpx.HTTPError as exc:
            op.calls.append(
                Call(step, method, path, request_id, sent, self.drill.now(), None, repr(exc)[:200])
            )
            return None
        code = None
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            with contextlib.suppress(ValueError, AttributeError):
                code = response.json().get("code")
        error = None if acknowledged(response.status_code) else response.text[:300]
        op.calls.append(
            Call(
                step,
                method,
                path,
                request_id,
                sent,
                self.drill.now(),
                response.status_code,
                error,
                code,
            )
        )
        return response

    def _buyer(self, label: str, client: int) -> tuple[str, str]:
        sub = f"chaos_{label}_{client}_{uuid.uuid4().hex[:12]}"
        token = self.drill.stack.identity.mint_token(sub, email=f"{sub}@chaos.example", name=label)
        return sub, token

    # operations ---------------------------------------------------------------------------

    def _free(self, http: httpx.Client, client: int, owned: list[_Owned]) -> None:
        buyer, token = self._buyer("free", client)
        op = self._op("free", client, buyer)
        op.keys["idempotency_key"] = key = uuid.uuid4().hex
        course = self.scenario.free_course
        r = self._call(
            http,
            op,
            "checkout",
            "POST",
            f"/courses/{course}/checkout",
            token=token,
            headers={"idempotency-key": key},
        )
        if r is not None and r.status_code == 201:
            op.keys["entitlement_id"] = entitlement = str(r.json()["entitlementId"])
            owned.append(_Owned(buyer, token, entitlement, list(PLAN)))

    def _paid(self, http: httpx.Client, client: int) -> None:
        buyer, token = self._buyer("paid", client)
        op = self._op("paid", client, buyer)
        op.keys["idempotency_key"] = key = uuid.uuid4().hex
        r = self._call(
            http,
            op,
            "checkout",
            "POST",
            f"/courses/{self.scenario.paid_course}/checkout",
            token=token,
            headers={"idempotency-key": key},
        )
        if r is None or r.status_code != 201:
            return
        answer = r.json()
        op.keys["entitlement_id"] = str(answer["entitlementId"])
        page_url = str(answer["paymentPageUrl"])
        op.keys["session_id"] = page_url.rstrip("/").rsplit("/", 1)[-1]
        page = self._call(
            http, op, "page", "GET", urlsplit(page_url).path, headers={"accept": "text/html"}
        )
        if page is None or page.status_code != 200:
            return
        action = form_action(page.text, "Pay")
        if action is None:
            self.drill.note("no Pay form", page.text[:300])
            return
        paid = self._call(
            http,
            op,
            "pay",
            "POST",
            urlsplit(urljoin(page_url, action)).path,
            content=b"",
            headers={"content-type": "application/x-www-form-urlencoded", "accept": "text/html"},
        )
        if paid is not None and paid.status_code == 303:
            success = paid.headers.get("location", "")
            if urlsplit(success).path != "/checkout/success":
                self.drill.note("Pay sent the buyer elsewhere than the success page", success)

    def _completion(
        self, http: httpx.Client, client: int, rng: random.Random, owned: list[_Owned]
    ) -> None:
        who = rng.choice([o for o in owned if o.todo])
        label, day = who.todo.pop(0)  # acknowledged or not, the client goes on to the next
        workout = self.scenario.workouts[label]
        op = self._op("completion", client, who.buyer)
        op.keys.update(entitlement_id=who.entitlement_id, workout_id=workout, day_offset=str(day))
        r = self._call(
            http,
            op,
            "complete",
            "POST",
            f"/me/courses/{self.scenario.free_course}/workouts/{workout}/complete",
            token=who.token,
            body={"dayOffset": day},
        )
        if r is not None and r.status_code == 200:
            answer = r.json()
            op.keys["item_id"] = str(answer["itemId"])
            op.keys["changed"] = str(answer["changed"])

    def _custom(self, http: httpx.Client, client: int, customs: list[_Custom]) -> None:
        buyer, token = self._buyer("custom", client)
        op = self._op("custom", client, buyer)
        op.keys["idempotency_key"] = key = uuid.uuid4().hex
        r = self._call(
            http,
            op,
            "offer_checkout",
            "POST",
            f"/custom-course-offers/{self.scenario.offer_code}/checkout",
            token=token,
            headers={"idempotency-key": key},
        )
        if r is None or r.status_code != 201:
            return
        op.keys["purchase_id"] = purchase = str(r.json()["purchaseId"])
        intake = {
            "goal": "Sleep deeply and wake rested",
            "preferredName": "Sam",
            "sessionCount": 1,
            "sessionLength": "brief",
        }
        r = self._call(
            http,
            op,
            "intake",
            "POST",
            "/me/custom-courses",
            token=token,
            body={"purchaseId": purchase, "intake": intake},
        )
        if r is not None and r.status_code == 202:
            op.keys["custom_course_id"] = course = str(r.json()["id"])
            customs.append(_Custom(buyer, token, course))

    def _regen(
        self, http: httpx.Client, client: int, rng: random.Random, customs: list[_Custom]
    ) -> None:
        mine = rng.choice([c for c in customs if not c.regen_done])
        op = self._op("regen", client, mine.buyer)
        op.keys["custom_course_id"] = mine.course_id
        # Generation is asynchronous by nature: the course is a state to read, not an error.
        r = self._call(
            http, op, "status", "GET", f"/me/custom-courses/{mine.course_id}", token=mine.token
        )
        if r is None or r.status_code != 200:
            return
        course = r.json()
        op.keys["course_status"] = str(course["status"])
        if course["status"] == "failed":
            mine.regen_done = True
            return
        if course["status"] != "ready":
            return
        mine.regen_done = True  # one request per course, acknowledged or not
        audio = str(course["data"]["audio_files"][0]["id"])
        op.keys["audio_id"] = audio
        r = self._call(
            http,
            op,
            "regen",
            "POST",
            f"/me/custom-courses/{mine.course_id}/regen-requests",
            token=mine.token,
            body={"audioId": audio, "reason": "chaos drill: the voice skipped a word"},
        )
        if r is None or r.status_code != 201:
            return
        op.keys["regen_id"] = regen = str(r.json()["id"])
        self._call(
            http,
            op,
            "approve",
            "POST",
            f"/organizations/{self.scenario.org_id}/regen-requests/{regen}/approve",
            token=self.scenario.owner_token,
            body={},
        )


# --- the killer --------------------------------------------------------------------------------


class _Unit(Protocol):
    """What the drill needs of a supervised child (a launcher or a replica)."""

    @property
    def name(self) -> str: ...

    @property
    def process(self) -> ManagedProcess | None: ...

    def ready(self) -> bool: ...

    def respawn(self) -> object: ...


def _category(name: str) -> str:
    return name if name in ("postgres", "nats") else "service"


class Killer:
    """One victim at a time: SIGKILL it, wait until it is back (restarted and ready), pause a
    random gap, next. The first kills cover a service replica, NATS and PostgreSQL."""

    def __init__(self, drill: Drill) -> None:
        self.drill = drill
        cfg = drill.config
        self.rng = random.Random(f"{cfg.seed}:killer")
        stack = drill.stack
        units: list[_Unit] = []
        if stack.postgres is not None:
            units.append(stack.postgres)
        if stack.nats is not None:
            units.append(stack.nats)
        units.extend(stack.replicas)
        self.units = {u.name: u for u in units}
        services = sorted(n for n in self.units if _category(n) == "service")
        first = [self.rng.choice(services), "nats", "postgres"]
        self.rng.shuffle(first)
        self.mandatory = first
        self.kills: list[Kill] = []

    def _pick(self) -> str:
        if len(self.kills) < len(self.mandatory):
            return self.mandatory[len(self.kills)]
        now = self.drill.now()
        # Never push a child into the supervisor's crash-loop rule (5 restarts within 60 s):
        # that would be our doing, not the suite's.
        recent = Counter(k.victim for k in self.kills if now - k.at < 60.0)
        choices = [n for n in sorted(self.units) if recent[n] < 3]
        return self.rng.choice(choices or sorted(self.units))

    def run(self, until: float) -> None:
        cfg = self.drill.config
        next_at = cfg.first_kill
        while not self.drill.aborted.is_set():
            due = next_at

            def is_due(at: float = due) -> bool:
                return self.drill.now() >= at

            if not self.drill.wait_until(is_due, until=until):
                return  # the load ended before the next kill
            name = self._pick()
            unit = self.units[name]
            process = unit.process
            if process is None or process.pid is None or not process.running:
                self.drill.note("victim not running", name)
                next_at = self.drill.now() + 0.5
                continue
            pid = process.pid
            os.kill(pid, signal.SIGKILL)
            kill = Kill(name, _category(name), pid, self.drill.now())
            self.kills.append(kill)
            self.drill.log(f"chaos: kill -9 {name} (PID {pid}) at {kill.at:.2f}s")
            self._await_back(kill, unit)
            next_at = self.drill.now() + self.rng.uniform(*cfg.gap)

    def _await_back(self, kill: Kill, unit: _Unit) -> None:
        cfg = self.drill.config

        def restarted() -> bool:
            proc = unit.process
            return proc is not None and proc.pid != kill.pid and proc.running

        if not self.drill.wait_until(restarted, timeout=cfg.heal_grace):
            kill.restarted_by = "drill"
            kill.note = f"the supervisor did not restart it within {cfg.heal_grace:g}s"
            self.drill.log(f"chaos: {kill.victim} not restarted by the supervisor: restarting it")
            self.drill.request_restart(unit)
            if not self.drill.wait_until(restarted, timeout=30.0):
                kill.restarted_by = "nobody"
                kill.note += "; the drill could not restart it either"
                return
        proc = unit.process
        kill.new_pid = proc.pid if proc is not None else None
        if kill.restarted_by == "supervisor" and not hasattr(self.drill.stack, "heal"):
            kill.restarted_by = "drill"  # no Stack.heal(): the drill supervises itself
        if self.drill.wait_until(unit.ready, timeout=cfg.back_timeout):
            kill.back_at = self.drill.now()
            self.drill.log(f"chaos: {kill.victim} back as PID {kill.new_pid} ({kill.downtime}s)")
        else:
            kill.note += f"; not ready within {cfg.back_timeout:g}s of its restart"


# --- state read back from the stack ----------------------------------------------------------


@dataclass
class Snapshot:
    """Everything the audit compares, read in one go."""

    rows: dict[str, list[dict[str, Any]]]
    unpublished: dict[str, int]
    outbox_counts: dict[str, int]
    streams: dict[str, int]  # stream -> messages
    consumers: dict[str, tuple[int, int]]  # "stream/consumer" -> (pending, ack pending)
    dead_letters: int
    mails: list[dict[str, str]]


QUERIES = {
    "c_entitlements": "SELECT id::text, user_id, course_id::text, organization_id::text, status,"
    " access_revoked_at, source_payment_transaction_id::text AS source_txn, version"
    " FROM commerce.course_entitlements",
    "c_txns": "SELECT id::text, user_id, entitlement_id::text, custom_course_purchase_id::text"
    " AS purchase_id, provider_transaction_id AS session_id, status"
    " FROM commerce.payment_transactions",
    "c_receipts": "SELECT transaction_id::text, email, sent_at IS NOT NULL AS sent, attempts,"
    " last_error FROM commerce.receipts",
    "c_purchases": "SELECT id::text, user_id, organization_id::text, offer_id::text, status"
    " FROM commerce.custom_course_purchases",
    "c_deliveries": "SELECT id, attempts, delivered_at IS NOT NULL AS delivered,"
    " gave_up_at IS NOT NULL AS gave_up, last_status, last_error"
    " FROM commerce.sandbox_webhook_deliveries",
    "c_sessions": "SELECT id, status FROM commerce.sandbox_sessions",
    "c_courses": "SELECT id::text, organization_id::text, name, status FROM commerce.courses",
    "c_plans": "SELECT course_id::text, id::text AS plan_id, price_in_cents, currency, is_active,"
    " version FROM commerce.plans",
    "c_orgs": "SELECT id::text, name, slug, currency, version FROM commerce.organizations",
    "c_memberships": "SELECT organization_id::text, user_id, role FROM commerce.memberships",
    "c_paid_events": "SELECT aggregate_id, count(*)::int AS n FROM commerce.outbox"
    " WHERE type = 'commerce.payment.completed.v1' GROUP BY aggregate_id",
    "k_courses": "SELECT p.id::text, p.organization_id::text, p.name, c.status,"
    " c.curriculum_version FROM catalog.programs p JOIN catalog.course_configs c"
    " ON c.program_id = p.id",
    "k_orgs": "SELECT id::text, name, slug, currency, version FROM catalog.organizations",
    "k_memberships": "SELECT organization_id::text, user_id, role FROM catalog.memberships",
    "k_plans": "SELECT course_id::text, plan_id::text, price_in_cents, currency, is_active,"
    " version FROM catalog.plan_projection",
    "l_entitlements": "SELECT entitlement_id::text AS id, user_id, course_id::text,"
    " organization_id::text, status, access_revoked_at, version FROM learning.entitlements",
    "l_courses": "SELECT course_id::text AS id, organization_id::text, status, curriculum_version"
    " FROM learning.courses",
    "l_memberships": "SELECT organization_id::text, user_id, role FROM learning.memberships",
    "l_completions": "SELECT entitlement_id::text, item_id::text, workout_id::text, day_offset"
    " FROM learning.completions",
    "l_completed_events": "SELECT aggregate_id, body FROM learning.outbox"
    " WHERE type = 'learning.workout.completed.v1'",
    "g_purchases": "SELECT id::text, user_id, organization_id::text, offer_id::text, status,"
    " custom_course_id::text FROM customgen.custom_course_purchases",
    "g_courses": "SELECT id::text, user_id, purchase_id::text, status, data::text AS data"
    " FROM customgen.custom_courses",
    "g_jobs": "SELECT id::text, custom_course_id::text, kind, regen_request_id::text, step,"
    " attempts, status, last_error FROM customgen.generation_jobs",
    "g_regens": "SELECT id::text, custom_course_id::text, audio_id::text, status"
    " FROM customgen.regen_requests",
    "g_memberships": "SELECT organization_id::text, user_id, role FROM customgen.memberships",
    "g_events": "SELECT type, aggregate_id, body FROM customgen.outbox WHERE type IN"
    " ('customgen.custom_course.ready.v1', 'customgen.audio.regenerated.v1')",
}


class Reader:
    """Reads the stack's state: PostgreSQL (asyncpg), JetStream (monitoring endpoint) and the
    mail sink (``.eml`` files, parsed once each)."""

    def __init__(self, stack: Stack) -> None:
        info = stack.info()
        url = str(info["database_url"])
        self.dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        assert stack.nats is not None
        self.jsz = f"{stack.nats.monitor_url}/jsz?accounts=true&streams=true&consumers=true"
        self.mail_dir = Path(stack.mail_dir)
        self._mails: dict[str, dict[str, str]] = {}

    async def snapshot(self) -> Snapshot:
        import asyncpg

        conn = await asyncpg.connect(self.dsn, timeout=5)
        try:
            rows: dict[str, list[dict[str, Any]]] = {}
            for name, sql in QUERIES.items():
                rows[name] = [dict(r) for r in await conn.fetch(sql)]
            unpublished: dict[str, int] = {}
            counts: dict[str, int] = {}
            for schema in SCHEMAS:
                unpublished[schema] = int(
                    await conn.fetchval(
                        f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
                    )
                )
                counts[schema] = int(await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox"))
        finally:
            await conn.close()
        streams, consumers, dead = await asyncio.to_thread(self._jetstream)
        mails = await asyncio.to_thread(self._read_mails)
        return Snapshot(rows, unpublished, counts, streams, consumers, dead, mails)

    def _jetstream(self) -> tuple[dict[str, int], dict[str, tuple[int, int]], int]:
        with urllib.request.urlopen(self.jsz, timeout=5) as response:
            data = json.loads(response.read())
        streams: dict[str, int] = {}
        consumers: dict[str, tuple[int, int]] = {}
        dead = 0
        for account in data.get("account_details") or []:
            for stream in account.get("stream_detail") or []:
                name = str(stream["name"])
                messages = int((stream.get("state") or {}).get("messages", 0))
                if name in SCHEMAS.values():
                    streams[name] = messages
                elif "DEAD" in name.upper():
                    dead += messages
                for consumer in stream.get("consumer_detail") or []:
                    if not (consumer.get("config") or {}).get("durable_name"):
                        continue
                    consumers[f"{name}/{consumer['name']}"] = (
                        int(consumer.get("num_pending", 0)),
                        int(consumer.get("num_ack_pending", 0)),
                    )
        return streams, consumers, dead

    def _read_mails(self) -> list[dict[str, str]]:
        for path in sorted(self.mail_dir.glob("*.eml")):
            if path.name in self._mails:
                continue
            try:
                message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            except OSError:
                continue
            self._mails[path.name] = {
                "file": path.name,
                "to": str(message.get("To", "")),
                "subject": str(message.get("Subject", "")),
                "transaction": str(message.get("X-Coursemesh-Transaction", "")),
                # a copy re-sent after a crash carries the same id: one receipt in a mailbox
                "message_id": str(message.get("Message-ID", "") or path.name),
            }
        return list(self._mails.values())


def _project(rows: list[dict[str, Any]], *keys: str) -> set[tuple[Any, ...]]:
    return {tuple(row[k] for k in keys) for row in rows}


def _diff(name: str, source: set[tuple[Any, ...]], copy: set[tuple[Any, ...]]) -> list[str]:
    missing, extra = source - copy, copy - source
    if not missing and not extra:
        return []
    return [
        f"{name}: {len(missing)} row(s) of the source not in the projection "
        f"{sorted(map(str, missing))[:3]}, {len(extra)} in the projection only "
        f"{sorted(map(str, extra))[:3]}"
    ]


def projection_gaps(s: Snapshot) -> list[str]:
    """Why the projections have not converged yet (empty: they have)."""
    r = s.rows
    gaps: list[str] = []
    for schema, count in s.unpublished.items():
        if count:
            gaps.append(f"{schema}: {count} outbox row(s) not published")
    for schema, stream in SCHEMAS.items():
        if s.streams.get(stream, 0) != s.outbox_counts.get(schema, 0):
            gaps.append(
                f"stream {stream} holds {s.streams.get(stream, 0)} message(s), "
                f"{schema}'s outbox {s.outbox_counts.get(schema, 0)} row(s)"
            )
    for name, (pending, ack_pending) in sorted(s.consumers.items()):
        if pending or ack_pending:
            gaps.append(f"consumer {name}: {pending} pending, {ack_pending} unacknowledged")
    ent = ("id", "user_id", "course_id", "organization_id", "status", "access_revoked_at")
    gaps += _diff(
        "learning.entitlements vs commerce.course_entitlements",
        _project(r["c_entitlements"], *ent, "version"),
        _project(r["l_entitlements"], *ent, "version"),
    )
    gaps += _diff(
        "commerce.courses vs catalog courses",
        _project(r["k_courses"], "id", "organization_id", "name", "status"),
        _project(r["c_courses"], "id", "organization_id", "name", "status"),
    )
    gaps += _diff(
        "learning.courses vs catalog courses",
        _project(r["k_courses"], "id", "organization_id", "status", "curriculum_version"),
        _project(r["l_courses"], "id", "organization_id", "status", "curriculum_version"),
    )
    gaps += _diff(
        "catalog.plan_projection vs commerce.plans",
        _project(r["c_plans"], "course_id", "plan_id", "price_in_cents", "is_active", "version"),
        _project(r["k_plans"], "course_id", "plan_id", "price_in_cents", "is_active", "version"),
    )
    gaps += _diff(
        "commerce.organizations vs catalog",
        _project(r["k_orgs"], "id", "name", "slug", "currency", "version"),
        _project(r["c_orgs"], "id", "name", "slug", "currency", "version"),
    )
    members = _project(r["k_memberships"], "organization_id", "user_id", "role")
    for prefix, schema in (("c", "commerce"), ("l", "learning"), ("g", "customgen")):
        gaps += _diff(
            f"{schema}.memberships vs catalog",
            members,
            _project(r[f"{prefix}_memberships"], "organization_id", "user_id", "role"),
        )
    gaps += _diff(
        "customgen.custom_course_purchases vs commerce (paid)",
        _project(
            [p for p in r["c_purchases"] if p["status"] == "paid"],
            "id",
            "user_id",
            "organization_id",
            "offer_id",
        ),
        _project(r["g_purchases"], "id", "user_id", "organization_id", "offer_id"),
    )
    return gaps


def effect_gaps(s: Snapshot) -> list[str]:
    """Why the asynchronous effects have not settled yet (empty: they have)."""
    r = s.rows
    gaps: list[str] = []
    busy = [d for d in r["c_deliveries"] if not d["delivered"] and not d["gave_up"]]
    if busy:
        gaps.append(f"{len(busy)} sandbox webhook(s) not delivered yet")
    paid_sessions = {x["id"] for x in r["c_sessions"] if x["status"] == "paid"}
    completed = {t["session_id"] for t in r["c_txns"] if t["status"] == "completed"}
    if paid_sessions - completed:
        gaps.append(f"{len(paid_sessions - completed)} paid session(s) without a completed payment")
    unsent = [x for x in r["c_receipts"] if not x["sent"] and x["attempts"] < 10]
    if unsent:
        gaps.append(f"{len(unsent)} receipt(s) not mailed yet")
    sent = {x["transaction_id"] for x in r["c_receipts"] if x["sent"]}
    mailed = {m["transaction"] for m in s.mails}
    if sent - mailed:
        gaps.append(f"{len(sent - mailed)} receipt(s) marked sent, not in the mail sink yet")
    pending = [j for j in r["g_jobs"] if j["status"] == "pending"]
    if pending:
        gaps.append(f"{len(pending)} generation job(s) pending")
    approved = [x for x in r["g_regens"] if x["status"] == "approved"]
    if approved:
        gaps.append(f"{len(approved)} approved regen request(s) not completed")
    return gaps


# --- the audit ---------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


class Audit:
    """Every recorded write against the settled state."""

    def __init__(self, drill: Drill, ops: list[Op], snap: Snapshot, s3: Any | None) -> None:
        self.drill = drill
        self.ops = ops
        self.snap = snap
        self.receipt_copies = 0
        self.s3 = s3
        self.tallies = {kind: Tally() for kind in WRITES}
        self.findings: list[Finding] = []
        self.checks_not_done: list[str] = []

    def _find(self, category: str, what: str, **detail: Any) -> None:
        self.findings.append(Finding(category, what, detail))

    def _count(self, kind: str, op: Op, step: str) -> Tally | None:
        """Count the call of ``step``; a Tally when it was sent."""
        call = op.call(step)
        if call is None:
            return None
        t = self.tallies[kind]
        t.sent += 1
        if acknowledged(call.status):
            t.acked += 1
        elif call.status is not None and 400 <= call.status < 500:
            t.refused += 1  # listed as a wrong answer by Drill._classify_calls
        return t

    @staticmethod
    def _effect(t: Tally, acked: bool, present: int, *, what: str = "") -> str:
        """Book one write whose effect is found ``present`` times; returns the verdict."""
        if present > 1:
            t.duplicated += 1
            return "duplicated"
        if acked:
            if present == 1:
                t.effects += 1
                return "ok"
            t.lost += 1
            return "lost"
        if present == 1:
            t.unacked_applied += 1
            return "applied"
        t.unacked_not_applied += 1
        return "not_applied"

    def run(self) -> None:
        r = self.snap.rows
        ents_by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in r["c_entitlements"]:
            ents_by_user[e["user_id"]].append(e)
        txn_by_session = {t["session_id"]: t for t in r["c_txns"] if t["session_id"]}
        paid_events = {e["aggregate_id"]: e["n"] for e in r["c_paid_events"]}
        receipts = {x["transaction_id"]: x for x in r["c_receipts"]}
        # Receipts as a mailbox shows them: distinct Message-IDs (mail systems merge a copy
        # re-sent after a crash between the SMTP server's acceptance and the sent mark).
        mails_by_txn = Counter(
            m["transaction"] for m in {m["message_id"]: m for m in self.snap.mails}.values()
        )
        self.receipt_copies = len(self.snap.mails) - sum(mails_by_txn.values())
        mails_by_to = Counter(m["to"] for m in self.snap.mails)
        purchases_by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for p in r["c_purchases"]:
            purchases_by_user[p["user_id"]].append(p)
        courses_by_purchase: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for c in r["g_courses"]:
            courses_by_purchase[c["purchase_id"]].append(c)
        regens = {x["id"]: x for x in r["g_regens"]}
        completions = {(c["entitlement_id"], c["item_id"]): c for c in r["l_completions"]}
        by_slot = Counter(
            (c["entitlement_id"], c["workout_id"], c["day_offset"]) for c in r["l_completions"]
        )
        completed_events: Counter[tuple[str, str]] = Counter()
        for row in r["l_completed_events"]:
            body = json.loads(bytes(row["body"]))
            completed_events[(row["aggregate_id"], str(body["payload"]["item_id"]))] += 1
        customgen_events: Counter[tuple[str, str]] = Counter()
        for row in r["g_events"]:
            body = json.loads(bytes(row["body"]))
            key = row["aggregate_id"]
            if row["type"] == "customgen.audio.regenerated.v1":
                key = str(body["payload"]["regen_request_id"])
            customgen_events[(row["type"], key)] += 1

        buyers: set[str] = set()
        paid_sessions_sent: set[str] = set()
        completion_slots: set[tuple[str, str, int]] = set()
        intake_purchases: set[str] = set()
        ready_courses: list[dict[str, Any]] = []
        for op in self.ops:
            if op.kind in ("free", "paid", "custom"):
                buyers.add(op.buyer)
            if op.kind == "free":
                self._free(op, ents_by_user, mails_by_to)
            elif op.kind == "paid":
                sid = op.keys.get("session_id")
                if op.sent("pay") and sid:
                    paid_sessions_sent.add(sid)
                self._paid(op, ents_by_user, txn_by_session)
            elif op.kind == "completion":
                slot = (
                    op.keys["entitlement_id"],
                    op.keys["workout_id"],
                    int(op.keys["day_offset"]),
                )
                completion_slots.add(slot)
                self._completion(op, completions, by_slot, completed_events)
            elif op.kind == "custom":
                self._custom(op, purchases_by_user, courses_by_purchase, intake_purchases)
            elif op.kind == "regen":
                self._regen(op, regens, r["g_courses"], customgen_events)

        # every completed payment: exactly once, one event, one receipt, one mail
        for txn in r["c_txns"]:
            if txn["status"] != "completed":
                continue
            sid = txn["session_id"]
            if sid not in paid_sessions_sent:
                self._find("phantom", "a payment completed whose page was never paid", txn=txn)
            n_events = paid_events.get(txn["id"], 0)
            if n_events != 1:
                self._find(
                    "duplicated" if n_events > 1 else "lost",
                    f"payment {txn['id']}: {n_events} payment.completed event(s)",
                    session=sid,
                )
            if txn["id"] not in receipts:
                self._find("lost", f"payment {txn['id']}: no receipt row", session=sid)
            n_mails = mails_by_txn.get(txn["id"], 0)
            if n_mails != 1:
                self._find(
                    "duplicated" if n_mails > 1 else "lost",
                    f"payment {txn['id']}: {n_mails} receipt mail(s)",
                    session=sid,
                    buyer=txn["user_id"],
                    receipt=receipts.get(txn["id"]),
                )
        known_txns = {t["id"] for t in r["c_txns"]}
        for m in self.snap.mails:
            if m["transaction"] not in known_txns:
                self._find("phantom", "a mail for no payment transaction", mail=m)
        # effects nobody asked for
        for user, rows in ents_by_user.items():
            if user not in buyers:
                self._find("phantom", "an entitlement of a user who never checked out", rows=rows)
        for user, rows in purchases_by_user.items():
            if user not in buyers:
                self._find(
                    "phantom", "a custom purchase of a user who never checked out", rows=rows
                )
        for slot, n in by_slot.items():
            if slot not in completion_slots:
                self._find("phantom", "a completion nobody posted", slot=slot, rows=n)
        for purchase, rows in courses_by_purchase.items():
            if purchase not in intake_purchases:
                self._find("phantom", "a custom course without an intake", purchase=purchase)
            for c in rows:
                if c["status"] == "ready":
                    ready_courses.append(c)
                else:
                    self._find("stuck", f"custom course {c['id']} is {c['status']}")
        for (kind, key), n in customgen_events.items():
            if n > 1:
                self._find("duplicated", f"{n} {kind} events for {key}")
        self._audio(ready_courses)

    # per operation ------------------------------------------------------------------------

    def _free(
        self, op: Op, ents_by_user: Mapping[str, list[dict[str, Any]]], mails: Counter[str]
    ) -> None:
        t = self._count("free_checkout", op, "checkout")
        if t is None:
            return
        rows = ents_by_user.get(op.buyer, [])
        acked = op.acked("checkout")
        if (
            acked
            and rows
            and (rows[0]["id"] != op.keys.get("entitlement_id") or rows[0]["status"] != "active")
        ):
            t.lost += 1
            self._find("lost", "free checkout: not the entitlement answered", op=op.id, rows=rows)
        else:
            verdict = self._effect(t, acked, len(rows))
            if verdict in ("lost", "duplicated"):
                self._find(verdict, f"free checkout {verdict}", op=asdict(op), rows=rows)
        to = f"{op.buyer}@chaos.example"
        if mails.get(to):
            self._find("phantom", "a mail to a free buyer", buyer=op.buyer, mails=mails[to])

    def _paid(
        self,
        op: Op,
        ents_by_user: Mapping[str, list[dict[str, Any]]],
        txn_by_session: Mapping[str, dict[str, Any]],
    ) -> None:
        t = self._count("paid_checkout", op, "checkout")
        if t is None:
            return
        rows = ents_by_user.get(op.buyer, [])
        acked = op.acked("checkout")
        sid = op.keys.get("session_id", "")
        txn = txn_by_session.get(sid)
        if (
            acked
            and rows
            and (
                rows[0]["id"] != op.keys.get("entitlement_id")
                or txn is None
                or txn["entitlement_id"] != rows[0]["id"]
            )
        ):
            t.lost += 1
            self._find("lost", "paid checkout: entitlement/payment not as answered", op=asdict(op))
        else:
            verdict = self._effect(t, acked, len(rows))
            if verdict in ("lost", "duplicated"):
                self._find(verdict, f"paid checkout {verdict}", op=asdict(op), rows=rows)
        p = self._count("payment", op, "pay")
        if p is None:
            if txn is not None and txn["status"] == "completed":
                self._find("phantom", "payment completed, Pay never sent", op=asdict(op))
            return
        done = txn is not None and txn["status"] == "completed"
        active = bool(
            rows
            and txn is not None
            and rows[0]["status"] == "active"
            and rows[0]["source_txn"] == txn["id"]
        )
        verdict = self._effect(p, op.acked("pay"), 1 if done and active else 0)
        if verdict == "lost":
            self._find(
                "lost",
                "payment acknowledged by the page, not completed/activated",
                op=asdict(op),
                txn=txn,
                rows=rows,
            )

    def _completion(
        self,
        op: Op,
        completions: Mapping[tuple[str, str], dict[str, Any]],
        by_slot: Counter[tuple[str, str, int]],
        events: Counter[tuple[str, str]],
    ) -> None:
        t = self._count("completion", op, "complete")
        if t is None:
            return
        ent = op.keys["entitlement_id"]
        slot = (ent, op.keys["workout_id"], int(op.keys["day_offset"]))
        present = by_slot.get(slot, 0)
        if op.acked("complete"):
            item = op.keys.get("item_id", "")
            present = 1 if (ent, item) in completions else 0
            n_events = events.get((ent, item), 0)
            if present and n_events != 1:
                self._find(
                    "duplicated" if n_events > 1 else "lost",
                    f"completion {item}: {n_events} workout.completed event(s)",
                    op=op.id,
                )
        verdict = self._effect(t, op.acked("complete"), present)
        if verdict in ("lost", "duplicated"):
            self._find(verdict, f"completion {verdict}", op=asdict(op))

    def _custom(
        self,
        op: Op,
        purchases_by_user: Mapping[str, list[dict[str, Any]]],
        courses_by_purchase: Mapping[str, list[dict[str, Any]]],
        intake_purchases: set[str],
    ) -> None:
        t = self._count("custom_purchase", op, "offer_checkout")
        if t is None:
            return
        rows = purchases_by_user.get(op.buyer, [])
        acked = op.acked("offer_checkout")
        if acked and len(rows) == 1 and rows[0]["id"] != op.keys.get("purchase_id"):
            t.lost += 1
            self._find("lost", "custom purchase: not the one answered", op=asdict(op), rows=rows)
        else:
            verdict = self._effect(t, acked, len(rows))
            if verdict in ("lost", "duplicated"):
                self._find(verdict, f"custom purchase {verdict}", op=asdict(op), rows=rows)
        i = self._count("intake", op, "intake")
        if i is None:
            return
        purchase = op.keys.get("purchase_id", "")
        intake_purchases.add(purchase)
        courses = courses_by_purchase.get(purchase, [])
        acked = op.acked("intake")
        if acked and len(courses) == 1 and courses[0]["id"] != op.keys.get("custom_course_id"):
            i.lost += 1
            self._find("lost", "intake: not the course answered", op=asdict(op))
            return
        verdict = self._effect(i, acked, len(courses))
        if verdict in ("lost", "duplicated"):
            self._find(verdict, f"intake {verdict}", op=asdict(op), courses=courses)

    def _regen(
        self,
        op: Op,
        regens: Mapping[str, dict[str, Any]],
        courses: list[dict[str, Any]],
        events: Counter[tuple[str, str]],
    ) -> None:
        t = self._count("regen_request", op, "regen")
        if t is None:
            return
        course_id = op.keys["custom_course_id"]
        audio = op.keys.get("audio_id", "")
        mine = [
            x
            for x in regens.values()
            if x["custom_course_id"] == course_id and x["audio_id"] == audio
        ]
        acked = op.acked("regen")
        if acked:
            present = 1 if op.keys.get("regen_id") in regens else 0
            verdict = self._effect(t, True, present + max(0, len(mine) - 1))
        else:
            verdict = self._effect(t, False, len(mine))
        if verdict in ("lost", "duplicated"):
            self._find(verdict, f"regen request {verdict}", op=asdict(op), rows=mine)
        a = self._count("regen_approval", op, "approve")
        if a is None:
            return
        row = regens.get(op.keys.get("regen_id", ""))
        status = row["status"] if row else None
        course = next((c for c in courses if c["id"] == course_id), None)
        generation = None
        if course is not None:
            files = json.loads(course["data"]).get("audio_files", [])
            generation = next((f.get("generation") for f in files if f["id"] == audio), None)
        n_events = events.get(("customgen.audio.regenerated.v1", op.keys.get("regen_id", "")), 0)
        done = status == "completed" and generation == 2 and n_events == 1
        verdict = self._effect(a, op.acked("approve"), 1 if done else 0)
        if verdict == "lost" or (status == "failed"):
            self._find(
                "lost",
                f"regen approval: request {status}, audio generation {generation}, "
                f"{n_events} audio.regenerated event(s)",
                op=asdict(op),
            )

    def _audio(self, courses: list[dict[str, Any]]) -> None:
        """Every audio file of a ready course is in S3 with its recorded MD5, SHA-256 and size.
        New files live under the key of their SHA-256 (one object per content, whoever names
        it); a course's legacy per-course keys keep one object per audio id."""
        if self.s3 is None:
            self.checks_not_done.append("S3 audio objects: no S3 client for this stack")
            return
        for course in courses:
            files = json.loads(course["data"]).get("audio_files", [])
            prefix = f"custom-courses/{course['id']}/audio/"
            listing = self.s3.list_objects_v2(Bucket=AUDIO_BUCKET, Prefix=prefix)
            keys = [o["Key"] for o in listing.get("Contents", [])]
            per_audio = Counter(k.split("/")[3] for k in keys)
            for entry in files:
                try:
                    blob = self.s3.get_object(Bucket=AUDIO_BUCKET, Key=entry["object_key"])[
                        "Body"
                    ].read()
                except Exception as exc:
                    self._find("lost", f"audio {entry['object_key']} not in S3: {exc!r}"[:300])
                    continue
                if (
                    hashlib.md5(blob).hexdigest() != entry["checksum"]
                    or len(blob) != entry["size_bytes"]
                    or entry.get("sha256", hashlib.sha256(blob).hexdigest())
                    != hashlib.sha256(blob).hexdigest()
                ):
                    self._find(
                        "lost", f"audio {entry['object_key']}: digests/size differ from data"
                    )
            legacy = {str(f["id"]) for f in files if f["object_key"].startswith(prefix)}
            if per_audio != dict.fromkeys(legacy, 1):
                self._find(
                    "duplicated" if any(n > 1 for n in per_audio.values()) else "lost",
                    f"custom course {course['id']}: objects per audio id {dict(per_audio)}",
                    keys=keys,
                )


# --- one run -----------------------------------------------------------------------------------


class Drill:
    """One chaos run on its own stack; see the module docstring."""

    def __init__(self, config: DrillConfig, workdir: Path, *, echo: bool = True) -> None:
        self.config = config
        self.workdir = workdir
        self.echo = echo
        self.aborted = threading.Event()
        self.lines: list[str] = []
        self.notes: list[dict[str, str]] = []
        self._t0 = time.monotonic()
        self._restart_requests: queue.Queue[_Unit] = queue.Queue()
        self._drill_restarts: list[str] = []
        #: (seconds after quiet, open gaps with numbers masked), each time the set changes
        self.gap_timeline: list[tuple[float, list[str]]] = []
        self.stack: Stack
        self.gateway_url = ""

    # plumbing -----------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self._t0

    def log(self, line: str) -> None:
        stamped = f"[{self.now():7.2f}s] {line}"
        self.lines.append(stamped)
        if self.echo:
            print(stamped, file=sys.stderr, flush=True)

    def note(self, what: str, detail: str) -> None:
        self.notes.append({"what": what, "detail": detail[:2000]})
        self.log(f"chaos: {what}: {detail.splitlines()[0] if detail else ''}")

    def wait_until(
        self,
        condition: Callable[[], bool],
        *,
        timeout: float | None = None,
        until: float | None = None,
        interval: float = 0.05,
    ) -> bool:
        """Poll ``condition`` until true (True) or a deadline (False): ``timeout`` seconds from
        now, or ``until`` on the drill's clock. Polling by condition and deadline only."""
        deadline = self.now() + timeout if timeout is not None else until
        while not self.aborted.is_set():
            with contextlib.suppress(Exception):
                if condition():
                    return True
            if deadline is not None and self.now() >= deadline:
                return False
            time.sleep(interval)
        return False

    def request_restart(self, unit: _Unit) -> None:
        """Ask the supervising thread (the one that started the stack) to restart ``unit``."""
        self._restart_requests.put(unit)

    def _do_restarts(self) -> None:
        while True:
            try:
                unit = self._restart_requests.get_nowait()
            except queue.Empty:
                return
            lock = self.stack.supervisor.lock
            with lock:
                process = unit.process
                if process is not None and process.running:
                    continue
                try:
                    unit.respawn()
                except Exception as exc:
                    self.note("the drill could not restart " + unit.name, repr(exc))
                    continue
            self._drill_restarts.append(unit.name)
            self.log(f"chaos: the drill restarted {unit.name}")

    def _supervise(self, done: threading.Event) -> str | None:
        """The supervising loop of the thread that started the stack: ``Stack.heal()`` every
        0.1 s (or, without it, the drill's own restarts), until ``done``. Returns a crash-loop
        message if the supervisor gave up."""
        heal = getattr(self.stack, "heal", None)
        while not done.is_set():
            if heal is not None:
                try:
                    heal()
                except StackError as exc:
                    self.aborted.set()
                    return str(exc)
            else:
                for child_unit in self._units():
                    process = child_unit.process
                    if process is not None and not process.running:
                        self.request_restart(child_unit)
            self._do_restarts()
            done.wait(0.1)  # paces the supervision rounds (as Stack.wait does)
        return None

    def _units(self) -> list[_Unit]:
        stack = self.stack
        units: list[_Unit] = [*stack.infrastructure, *stack.replicas]
        if stack.gateway is not None:
            units.append(stack.gateway)
        return units

    # the run ------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        cfg = self.config
        self.log(
            f"chaos: seed {cfg.seed}, {cfg.replicas} replica(s), {cfg.duration:g}s of load, "
            f"{cfg.clients} clients, data in {self.workdir}"
        )
        report: dict[str, Any] = {"config": {**asdict(cfg), "gap": list(cfg.gap)}}
        started = time.monotonic()
        self.stack = Stack(
            data_dir=self.workdir / "data",
            fresh=True,
            gateway_port=free_port(),
            replicas=cfg.replicas,
            log_level="WARNING",
            trace_sample_ratio=cfg.trace_sample_ratio,
            log=lambda line: self.log(f"supervisor: {line}"),
        )
        with self.stack:
            self.gateway_url = self.stack.gateway_url
            report["startup_seconds"] = round(time.monotonic() - started, 2)
            report["healing"] = "Stack.heal()" if hasattr(self.stack, "heal") else "drill"
            done = threading.Event()
            result: dict[str, Any] = {}
            conductor = threading.Thread(
                target=self._conduct, args=(result, done), name="chaos-conductor"
            )
            conductor.start()
            try:
                crash = self._supervise(done)
            except BaseException:  # Ctrl-C: stop the load, the killer and the polling first
                self.aborted.set()
                conductor.join()
                raise
            conductor.join()
            if crash is not None:
                result.setdefault("findings", []).append(
                    asdict(Finding("crash_loop", "the supervisor gave up", {"message": crash}))
                )
                result["finding_counts"] = dict(Counter(f["category"] for f in result["findings"]))
            report.update(result)
            report["supervisor_log"] = [x for x in self.lines if "supervisor:" in x]
            report["logs_dir"] = str(self.stack.logs_dir)
        report["notes"] = self.notes
        report["drill_restarts"] = self._drill_restarts
        report["wall_seconds"] = round(time.monotonic() - started, 1)
        return report

    def _conduct(self, result: dict[str, Any], done: threading.Event) -> None:
        try:
            self._conduct_inner(result)
        except Exception:
            result.setdefault("findings", []).append(
                asdict(
                    Finding(
                        "drill_error", "the drill itself failed", {"trace": traceback.format_exc()}
                    )
                )
            )
            self.aborted.set()
        finally:
            done.set()

    def _conduct_inner(self, result: dict[str, Any]) -> None:
        cfg = self.config
        scenario = _Seed(self.stack, cfg.http_timeout).scenario()
        self.log("chaos: seeded (one org, a free and a paid course, a custom-course offer)")
        load = Load(self, scenario)
        killer = Killer(self)
        self._t0 = time.monotonic()  # the load's clock starts now
        until = cfg.duration
        threads = [
            threading.Thread(target=load.run_client, args=(i, until), name=f"chaos-client-{i}")
            for i in range(cfg.clients)
        ]
        threads.append(threading.Thread(target=killer.run, args=(until,), name="chaos-killer"))
        for t in threads:
            t.start()
        for t in threads[:-1]:
            t.join()
        load_end = self.now()  # the last call of the load has its answer (or gave up)
        threads[-1].join()  # the killer: its last victim is back
        last_back = max((k.back_at or k.at for k in killer.kills), default=0.0)
        quiet = max(load_end, last_back)
        self.log(f"chaos: load over ({len(load.ops)} operations); {len(killer.kills)} kill(s)")
        reader = Reader(self.stack)
        converged_at, settled_at, snap, gaps = asyncio.run(self._converge(reader, quiet))
        s3 = None
        if self.stack.s3 is not None:
            s3 = self.stack.s3.config.client()
        audit = Audit(self, load.ops, snap, s3)
        audit.run()
        findings = [asdict(f) for f in audit.findings]
        if settled_at is None:
            findings.append(
                asdict(Finding("stuck", "did not converge before the deadline", {"gaps": gaps}))
            )
        findings += self._classify_calls(load.ops, killer.kills)
        findings += self._unexpected_exits(killer.kills)
        totals = Tally()
        for tally in audit.tallies.values():
            for name in asdict(totals):
                setattr(totals, name, getattr(totals, name) + getattr(tally, name))
        counts = Counter(f["category"] for f in findings)
        result.update(
            seed=cfg.seed,
            replicas=cfg.replicas,
            operations=len(load.ops),
            writes={k: asdict(v) for k, v in audit.tallies.items()},
            totals=asdict(totals),
            kills=[asdict(k) | {"downtime": k.downtime} for k in killer.kills],
            kills_by_category=dict(Counter(k.category for k in killer.kills)),
            downtime_p50=_percentile(
                [k.downtime for k in killer.kills if k.downtime is not None], 0.5
            ),
            downtime_max=max(
                (k.downtime for k in killer.kills if k.downtime is not None), default=None
            ),
            load_end=round(load_end, 3),
            last_back=round(last_back, 3),
            # converged = projections equal to their sources AND nothing asynchronous pending
            # that would change them again (webhooks, receipts, generation jobs): stable
            convergence_seconds=None if settled_at is None else round(settled_at - quiet, 3),
            projections_first_equal_seconds=None
            if converged_at is None
            else round(converged_at - quiet, 3),
            waited_last_for=_last_gaps(self.gap_timeline),
            gaps_left=gaps,
            gap_timeline=self.gap_timeline,
            checks_not_done=audit.checks_not_done,
            findings=findings,
            receipt_copies=audit.receipt_copies,
            finding_counts=dict(counts),
            # each finding is one distinct missing/doubled/unasked-for effect
            lost=counts.get("lost", 0),
            duplicated=counts.get("duplicated", 0),
            phantom=counts.get("phantom", 0),
            ops=[asdict(o) for o in load.ops],
        )

    async def _converge(
        self, reader: Reader, quiet: float
    ) -> tuple[float | None, float | None, Snapshot, list[str]]:
        """Poll until the projections converged and the effects settled, or the deadline."""
        deadline = quiet + self.config.converge_timeout
        converged_at: float | None = None
        settled_at: float | None = None
        snap: Snapshot | None = None
        gaps: list[str] = []
        last_error = ""
        while True:
            try:
                snap = await reader.snapshot()
            except Exception as exc:  # PostgreSQL or NATS restarting: not yet
                last_error = repr(exc)
                if self.now() >= deadline or self.aborted.is_set():
                    raise RuntimeError(f"cannot read the stack's state: {last_error}") from exc
                await asyncio.sleep(0.2)
                continue
            proj = projection_gaps(snap)
            effects = effect_gaps(snap)
            if not proj and converged_at is None:
                converged_at = self.now()
            if converged_at is not None and not proj and not effects:
                settled_at = self.now()
                self.gap_timeline.append((round(settled_at - quiet, 2), []))
                self.log(
                    f"chaos: converged {settled_at - quiet:.2f}s after the last victim was back "
                    f"and the load over (projections first equal after "
                    f"{converged_at - quiet:.2f}s; last waited for: "
                    f"{', '.join(_last_gaps(self.gap_timeline)) or 'nothing'})"
                )
                return converged_at, settled_at, snap, []
            gaps = proj + effects
            # what is still open, as it changes (the report shows what convergence waited for)
            shape = [re.sub(r"\d+", "N", g.split(" [", 1)[0]) for g in gaps]
            if not self.gap_timeline or self.gap_timeline[-1][1] != shape:
                self.gap_timeline.append((round(self.now() - quiet, 2), shape))
            if self.now() >= deadline or self.aborted.is_set():
                self.log("chaos: deadline: " + "; ".join(gaps))
                return converged_at, settled_at, snap, gaps
            await asyncio.sleep(0.2)  # paces the polling; the condition decides

    def _outages(self, kills: list[Kill]) -> list[tuple[float, float, str]]:
        grace = self.config.outage_grace
        return [
            (k.at, (k.back_at if k.back_at is not None else k.at + 60.0) + grace, k.victim)
            for k in kills
        ]

    def _classify_calls(self, ops: list[Op], kills: list[Kill]) -> list[dict[str, Any]]:
        """Every call of this load has one right answer (new buyers, one regen per course, no
        retries). A 4xx is a wrong answer. No answer or a 5xx is expected while a victim is
        down (plus a grace for redelivery and catch-up); any other is listed."""
        outages = self._outages(kills)
        found: list[dict[str, Any]] = []
        for op in ops:
            for call in op.calls:
                status = call.status
                if status is not None and 400 <= status < 500:
                    what = (
                        f"{op.kind}/{call.step}: {call.method} {call.path} -> {status} {call.code}"
                    )
                    found.append(
                        asdict(
                            Finding(
                                "wrong_answer",
                                what,
                                {"call": asdict(call), "op": op.id, "buyer": op.buyer},
                            )
                        )
                    )
                    continue
                if status is not None and status < 500:
                    continue
                if any(start <= call.done and call.sent <= end for start, end, _ in outages):
                    continue
                found.append(
                    asdict(
                        Finding(
                            "unexplained_5xx",
                            f"{call.method} {call.path} -> {status or call.error} "
                            "outside every outage",
                            {"call": asdict(call), "op": op.id},
                        )
                    )
                )
        return found

    def _unexpected_exits(self, kills: list[Kill]) -> list[dict[str, Any]]:
        """Exits the supervisor saw that were not our kills (a child that died by itself)."""
        ours = {(k.victim, k.pid) for k in kills}
        found = []
        for record in self.stack.supervisor.history:
            if (record.name, record.old_pid) not in ours:
                found.append(
                    asdict(
                        Finding(
                            "unexpected_exit",
                            f"{record.name} (PID {record.old_pid}) {record.reason}",
                            {"log": str(self.stack.logs_dir / f"{record.name}.log")},
                        )
                    )
                )
        return found


# --- several runs, the table ---------------------------------------------------------------------


def _last_gaps(timeline: list[tuple[float, list[str]]]) -> list[str]:
    """What was still open just before everything converged."""
    if len(timeline) < 2 or timeline[-1][1]:
        return []
    return timeline[-2][1]


def run_one(
    config: DrillConfig, workdir: Path | None = None, *, keep: bool = False
) -> dict[str, Any]:
    """One run in ``workdir`` (default: a new temp dir, removed afterwards unless ``keep`` or
    the run found something: then its logs stay for the evidence)."""
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="chaos-")) if workdir is None else workdir
    drill = Drill(config, root)
    report = drill.run()
    report["workdir"] = str(root)
    failed = bool(report.get("lost") or report.get("duplicated") or report.get("findings"))
    if own and not keep and not failed:
        shutil.rmtree(root, ignore_errors=True)
        report["workdir"] = None
    return report


COLUMNS = (
    ("replicas", "rep"),
    ("run", "run"),
    ("seed", "seed"),
    ("kills", "kills s/n/p"),
    ("sent", "sent"),
    ("acked", "acked"),
    ("effects", "effects"),
    ("ambiguous", "ambig."),
    ("lost", "lost"),
    ("duplicated", "dup."),
    ("phantom", "phantom"),
    ("other", "other findings"),
    ("conv", "converged s"),
)


def row_of(report: dict[str, Any], run: int) -> dict[str, str]:
    totals = report.get("totals") or {}
    kills = report.get("kills_by_category") or {}
    counts = dict(report.get("finding_counts") or {})
    for category in ("lost", "duplicated", "phantom"):
        counts.pop(category, None)

    def num(value: Any) -> str:
        return "-" if value is None else f"{value}"

    return {
        "replicas": str(report.get("replicas", report["config"]["replicas"])),
        "run": str(run),
        "seed": str(report["config"]["seed"]),
        "kills": f"{kills.get('service', 0)}/{kills.get('nats', 0)}/{kills.get('postgres', 0)}",
        "sent": num(totals.get("sent")),
        "acked": num(totals.get("acked")),
        "effects": num(totals.get("effects")),
        "ambiguous": f"{totals.get('unacked_applied', 0)}+{totals.get('unacked_not_applied', 0)}",
        "lost": num(report.get("lost")),
        "duplicated": num(report.get("duplicated")),
        "phantom": num(report.get("phantom")),
        "other": ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-",
        "conv": num(report.get("convergence_seconds")),
    }


def render(rows: list[dict[str, str]]) -> str:
    widths = {k: max(len(title), *(len(r[k]) for r in rows)) for k, title in COLUMNS}
    lines = ["  ".join(title.rjust(widths[k]) for k, title in COLUMNS)]
    lines += ["  ".join(r[k].rjust(widths[k]) for k, _ in COLUMNS) for r in rows]
    return "\n".join(lines)


def summary(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """p50/max of convergence and the sums, per replica count."""
    out: dict[str, Any] = {}
    by: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in reports:
        by[int(r["config"]["replicas"])].append(r)
    for replicas, group in sorted(by.items()):
        conv = [r["convergence_seconds"] for r in group if r.get("convergence_seconds") is not None]
        totals: Counter[str] = Counter()
        for r in group:
            totals.update(r.get("totals") or {})
        out[str(replicas)] = {
            "runs": len(group),
            **dict(totals),
            "lost": sum(int(r.get("lost") or 0) for r in group),
            "duplicated": sum(int(r.get("duplicated") or 0) for r in group),
            "phantom": sum(int(r.get("phantom") or 0) for r in group),
            "convergence_p50": statistics.median(conv) if conv else None,
            "convergence_max": max(conv) if conv else None,
            "not_converged": len(group) - len(conv),
        }
    return out


def _which(report: dict[str, Any]) -> str:
    cfg = report["config"]
    return f"run {report.get('run')} (replicas {cfg['replicas']}, seed {cfg['seed']})"


def _slim(report: dict[str, Any]) -> dict[str, Any]:
    """The report without the per-operation records (they go to their own file)."""
    return {k: v for k, v in report.items() if k != "ops"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench chaos", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per replica count")
    parser.add_argument("--replicas", default="1,2", help="replica counts, e.g. 1,2")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load per run")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--seed", type=int, default=None, help="base seed (default: random)")
    parser.add_argument(
        "--gap", default="2,6", help="seconds between a victim back and the next kill: min,max"
    )
    parser.add_argument("--converge-timeout", type=float, default=180.0)
    parser.add_argument("--max-custom", type=int, default=None, help="custom purchases per run")
    parser.add_argument("--trace-sample-ratio", type=float, default=0.01)
    parser.add_argument("--keep", action="store_true", help="keep every run's data dir")
    args = parser.parse_args(argv)
    base_seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    gap_min, gap_max = (float(x) for x in args.gap.split(","))
    print(f"chaos: base seed {base_seed}", file=sys.stderr, flush=True)
    reports: list[dict[str, Any]] = []
    rows: list[dict[str, str]] = []
    for replicas in (int(x) for x in args.replicas.split(",") if x):
        for run in range(1, args.runs + 1):
            seed = base_seed + 1000 * replicas + run
            config = DrillConfig(
                replicas=replicas,
                duration=args.duration,
                clients=args.clients,
                seed=seed,
                gap=(gap_min, gap_max),
                converge_timeout=args.converge_timeout,
                max_custom=args.max_custom,
                trace_sample_ratio=args.trace_sample_ratio,
            )
            report = run_one(config, keep=args.keep)
            report["run"] = run
            reports.append(report)
            rows.append(row_of(report, run))
            print(render(rows[-1:]), file=sys.stderr, flush=True)
    table = render(rows)
    totals = summary(reports)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = RESULTS / f"chaos-{stamp}.json"
    path.write_text(
        json.dumps(
            {"base_seed": base_seed, "summary": totals, "runs": [_slim(r) for r in reports]},
            indent=2,
            default=str,
        )
        + "\n"
    )
    ops_path = RESULTS / f"chaos-{stamp}-operations.json"
    ops_path.write_text(
        json.dumps(
            [
                {"run": r["run"], "seed": r["config"]["seed"], "ops": r.get("ops", [])}
                for r in reports
            ],
            default=str,
        )
        + "\n"
    )
    print(table)
    print()
    for count, s in totals.items():
        print(
            f"replicas {count}: {s['runs']} run(s), sent {s.get('sent', 0)}, acked "
            f"{s.get('acked', 0)}, effects {s.get('effects', 0)}, lost {s['lost']}, duplicated "
            f"{s['duplicated']}, phantom {s['phantom']}, convergence p50 {s['convergence_p50']} s "
            f"/ max {s['convergence_max']} s"
        )
    for r in reports:
        for f in r.get("findings") or []:
            print(f"  {_which(r)}: [{f['category']}] {f['what']}")
        if r.get("workdir"):
            print(f"  {_which(r)}: data and logs kept in {r['workdir']}")
    print(f"-> {path.relative_to(ROOT)} (+ {ops_path.name})", file=sys.stderr)
    bad = any(
        r.get("lost")
        or r.get("duplicated")
        or r.get("phantom")
        or r.get("convergence_seconds") is None
        for r in reports
    )
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
