"""Read-your-writes across services, as a client acting back to back sees it.

Each sequence crosses services right after the caller's own write, 20 rounds
(``COURSEMESH_E2E_RYW_ROUNDS``), while a background load of checkouts and reads keeps every
stream busy. Not one answer may be wrong: no false 404, no empty list, no retry. Runs in both
topologies (single, two replicas of every service).
"""

from __future__ import annotations

import concurrent.futures
import os
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from suite import Course, Suite, User

pytestmark = pytest.mark.e2e

ROUNDS = int(os.environ.get("COURSEMESH_E2E_RYW_ROUNDS", "20"))
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass
class Answers:
    """Every answer of a sequence that was not the one the caller's own writes call for."""

    wrong: list[str] = field(default_factory=list)
    calls: int = 0

    def expect(self, response: httpx.Response, status: int) -> Any:
        self.calls += 1
        if response.status_code != status:
            self.wrong.append(
                f"{response.request.method} {response.request.url.path} -> "
                f"{response.status_code} (wanted {status}): {response.text[:300]}"
            )
            raise _Wrong
        return response.json() if response.content else None

    def check(self, condition: bool, what: str) -> None:
        if not condition:
            self.wrong.append(what)
            raise _Wrong


class _Wrong(Exception):
    """Ends a round at its first wrong answer (recorded in ``Answers.wrong``)."""


def run_rounds(step: Callable[[Answers], None]) -> Answers:
    answers = Answers()
    for _ in range(ROUNDS):
        with suppress(_Wrong):
            step(answers)
    return answers


@dataclass
class Load:
    requests: int = 0
    errors: list[str] = field(default_factory=list)


@contextmanager
def background_load(suite: Suite, course: Course, *, threads: int = 2) -> Iterator[Load]:
    """Free checkouts by fresh buyers (events on every stream's consumers), their player, and
    storefront reads, until the block ends; bounded to 10 minutes and 20,000 requests."""
    load = Load()
    stop = threading.Event()
    lock = threading.Lock()

    def work() -> None:
        with httpx.Client(base_url=suite.base_url, timeout=30) as anon:
            while not stop.is_set() and load.requests < 20_000:
                buyer = suite.user("load")
                answers = [
                    anon.get(f"/public/courses/{course.course_id}"),
                    buyer.post(f"/courses/{course.course_id}/checkout"),
                    buyer.get(f"/me/courses/{course.course_id}"),
                ]
                with lock:
                    load.requests += len(answers)
                    load.errors += [
                        f"{r.request.url.path} {r.status_code}"
                        for r in answers
                        if r.status_code >= 500
                    ]

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield load
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=600)
    assert load.requests > 0
    assert load.errors == [], load.errors[:10]


@pytest.fixture
def load(suite: Suite, free_course: Course) -> Iterator[Load]:
    with background_load(suite, free_course) as running:
        yield running


def new_org(suite: Suite, answers: Answers, owner: User) -> str:
    slug = f"ryw-{uuid.uuid4().hex[:12]}"
    org = answers.expect(
        owner.post("/organizations", {"name": f"Studio {slug}", "slug": slug, "currency": "EUR"}),
        201,
    )
    return str(org["id"])


def offer(answers: Answers, owner: User, org_id: str) -> str:
    code = "X" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(5))
    answers.expect(
        owner.post(
            f"/organizations/{org_id}/custom-course-offers",
            {"code": code, "title": "Calm", "priceInCents": 0},
        ),
        201,
    )
    return code


def test_org_then_offer(suite: Suite, load: Load) -> None:
    def step(answers: Answers) -> None:
        owner = suite.user("owner")
        offer(answers, owner, new_org(suite, answers, owner))

    answers = run_rounds(step)
    assert answers.wrong == []
    assert answers.calls == 2 * ROUNDS


def test_org_then_listed_among_my_organizations(suite: Suite, load: Load) -> None:
    """Catalog reads the tables it wrote: each new organization is in the very next list."""

    def step(answers: Answers) -> None:
        owner = suite.user("owner")
        first = new_org(suite, answers, owner)
        page = answers.expect(owner.get("/organizations"), 200)
        answers.check(
            [(o["id"], o["role"]) for o in page["items"]] == [(first, "owner")]
            and page["total"] == 1,
            f"organizations {page}",
        )
        second = new_org(suite, answers, owner)
        page = answers.expect(owner.get("/organizations"), 200)
        answers.check(
            {o["id"] for o in page["items"]} == {first, second} and page["total"] == 2,
            f"organizations {page}",
        )

    answers = run_rounds(step)
    assert answers.wrong == []
    assert answers.calls == 4 * ROUNDS


def test_org_then_trainer_prices_in_commerce_and_reads_enrollments_in_learning(
    suite: Suite, load: Load
) -> None:
    def step(answers: Answers) -> None:
        owner, trainer = suite.user("owner"), suite.user("trainer")
        org_id = new_org(suite, answers, owner)
        answers.expect(
            owner.post(
                f"/organizations/{org_id}/members", {"userId": trainer.sub, "role": "trainer"}
            ),
            201,
        )
        course = answers.expect(
            trainer.post(
                f"/organizations/{org_id}/courses",
                {"name": "Reset", "description": "d", "durationDays": 1},
            ),
            201,
        )
        path = f"/organizations/{org_id}/courses/{course['id']}"
        priced = answers.expect(trainer.patch(f"{path}/price", {"priceInCents": 1900}), 200)
        answers.check(priced["priceInCents"] == 1900, f"price answered {priced}")
        page = answers.expect(trainer.get(f"{path}/enrollments"), 200)
        answers.check(page["items"] == [] and page["total"] == 0, f"enrollments {page}")

    answers = run_rounds(step)
    assert answers.wrong == []
    assert answers.calls == 5 * ROUNDS


def test_course_to_sale_to_player_to_staff_drill_down(suite: Suite, load: Load) -> None:
    def step(answers: Answers) -> None:
        owner, buyer = suite.user("owner"), suite.user("buyer")
        org_id = new_org(suite, answers, owner)
        workout = answers.expect(
            owner.post(f"/organizations/{org_id}/workouts", {"title": "Mobility"}), 201
        )["id"]
        course = answers.expect(
            owner.post(
                f"/organizations/{org_id}/courses",
                {"name": "One day", "description": "d", "durationDays": 1},
            ),
            201,
        )
        cid = course["id"]
        path = f"/organizations/{org_id}/courses/{cid}"
        answers.expect(owner.post(f"{path}/days", {"dayOffset": 0, "workoutIds": [workout]}), 200)
        answers.expect(owner.post(f"{path}/publish"), 200)
        answers.expect(owner.patch(f"{path}/price", {"priceInCents": 0}), 200)
        shown = answers.expect(suite.anon.get(f"/public/courses/{cid}"), 200)
        answers.check(shown["price"] == {"cents": 0, "currency": "EUR"}, f"storefront {shown}")
        answers.expect(buyer.post(f"/courses/{cid}/checkout"), 201)
        player = answers.expect(buyer.get(f"/me/courses/{cid}"), 200)
        answers.check(player["courseStatus"] == "published", f"player {player['courseStatus']}")
        answers.check(len(player["days"]) == 1, f"player days {player['days']}")
        done = answers.expect(
            buyer.post(f"/me/courses/{cid}/workouts/{workout}/complete", {"dayOffset": 0}), 200
        )
        answers.check(done["courseCompletedAt"] is not None, f"completion {done}")
        page = answers.expect(owner.get(f"{path}/enrollments"), 200)
        mine = [row for row in page["items"] if row["userId"] == buyer.sub]
        answers.check(
            len(mine) == 1 and mine[0]["completedCount"] == 1 and mine[0]["completedAt"],
            f"drill-down {page}",
        )

    answers = run_rounds(step)
    assert answers.wrong == []
    assert answers.calls == 11 * ROUNDS


def test_custom_offer_checkout_then_purchase_listed_then_intake(suite: Suite, load: Load) -> None:
    def step(answers: Answers) -> None:
        owner, buyer = suite.user("owner"), suite.user("buyer")
        code = offer(answers, owner, new_org(suite, answers, owner))
        bought = answers.expect(buyer.post(f"/custom-course-offers/{code}/checkout"), 201)
        listed = answers.expect(buyer.get("/me/custom-course-purchases"), 200)
        answers.check(
            [p["purchaseId"] for p in listed] == [bought["purchaseId"]], f"purchases {listed}"
        )
        answers.expect(
            buyer.post(
                "/me/custom-courses",
                {
                    "purchaseId": bought["purchaseId"],
                    "intake": {
                        "goal": "Sleep well",
                        "preferredName": "Sam",
                        "sessionCount": 1,
                        "sessionLength": "brief",
                    },
                },
            ),
            202,
        )

    answers = run_rounds(step)
    assert answers.wrong == []
    assert answers.calls == 5 * ROUNDS


def test_writes_made_while_a_service_was_down_are_seen_once_it_is_back(
    suite: Suite, free_course: Course
) -> None:
    """The catch-up state lives in JetStream, not in a process: a restarted learning applies
    what commerce published while it was down before it answers a negative, and a restarted
    commerce's first answers are as consistent as its predecessor's."""
    buyer = suite.user("restart")
    suite.stack.stop_service("learning")
    try:
        suite.checkout(buyer, free_course)  # commerce sells while learning is down
    finally:
        suite.stack.start_service("learning")  # waits for the process, not for our events
    view = suite.player(buyer, free_course)  # back to back: no retry
    assert view["entitlement"]["status"] == "active"

    suite.stack.stop_service("commerce")
    suite.stack.start_service("commerce")
    owner = suite.user("owner")
    answers = Answers()
    offer(answers, owner, new_org(suite, answers, owner))
    assert answers.wrong == []


# --- genuine absence, and a flood of it -----------------------------------------------------------

UNKNOWN_PATHS = (
    ("GET", "/public/courses/{id}"),  # catalog, after commerce's prices
    ("POST", "/courses/{id}/checkout"),  # commerce, after catalog's courses
    ("GET", "/me/courses/{id}"),  # learning, after catalog and commerce
    ("GET", "/me/custom-courses/{id}"),  # custom-gen, after commerce and catalog
)


def test_an_unknown_id_is_still_a_404(suite: Suite) -> None:
    """Every service confirms a genuine absence once caught up: a 404, never a 503 (which it
    would be past the service's catch-up bound) and never a 200."""
    user = suite.user("prober")
    for method, template in UNKNOWN_PATHS:
        for _ in range(5):
            response = user.client.request(method, template.format(id=uuid.uuid4()))
            assert response.status_code == 404, (template, response.status_code, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")


def test_a_flood_of_unknown_ids_neither_exhausts_nor_blocks_the_positive_paths(
    suite: Suite, free_course: Course
) -> None:
    buyer = suite.user("steady")
    suite.checkout(buyer, free_course)
    flooder = suite.user("flood")
    clients = threading.local()  # one connection pool per thread: httpx's is not shared safely
    opened: list[httpx.Client] = []

    def probe(n: int) -> int:
        if not hasattr(clients, "http"):
            clients.http = httpx.Client(
                base_url=suite.base_url, headers=flooder.client.headers, timeout=30
            )
            opened.append(clients.http)
        method, template = UNKNOWN_PATHS[n % len(UNKNOWN_PATHS)]
        return int(clients.http.request(method, template.format(id=uuid.uuid4())).status_code)

    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        flood = [pool.submit(probe, n) for n in range(2_000)]
        steady = []
        while not all(f.done() for f in flood):
            steady.append(buyer.get(f"/me/courses/{free_course.course_id}").status_code)
            steady.append(suite.anon.get(f"/public/courses/{free_course.course_id}").status_code)
        statuses = [f.result() for f in flood]
    for client in opened:
        client.close()
    # A wait past the bound or past the waiter limit is a retryable 503; nothing else fails.
    assert set(statuses) <= {404, 503}, sorted(set(statuses))
    assert statuses.count(404) > len(statuses) // 2
    assert steady
    assert set(steady) == {200}, sorted(set(steady))
    # Nothing is left holding connections: positive and negative answers right after.
    assert buyer.get(f"/me/courses/{free_course.course_id}").status_code == 200
    assert probe(0) == 404
