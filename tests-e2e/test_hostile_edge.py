"""Hostile bodies and queries through the gateway: every service refuses them with a clear
400, and nothing they name changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from suite import Course, Suite, ok, problem

pytestmark = pytest.mark.e2e

DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
JSON = {"content-type": "application/json"}


def test_deep_bodies_are_400_on_every_service(suite: Suite, free_course: Course) -> None:
    owner = free_course.owner
    buyer = suite.user("buyer")
    suite.checkout(buyer, free_course)
    player_before = suite.player(buyer, free_course)
    storefront_before = suite.storefront(free_course.course_id)
    routes = [
        (owner, "POST", "/organizations"),
        (
            owner,
            "PATCH",
            f"/organizations/{free_course.org_id}/courses/{free_course.course_id}/price",
        ),
        (buyer, "POST", f"/me/courses/{free_course.course_id}/start"),
        (buyer, "POST", "/me/custom-courses"),
        (buyer, "POST", "/me/custom-courses/handshake"),
    ]
    for body in (DEEP_ARRAY, DEEP_OBJECT):
        for user, method, path in routes:
            response = user.client.request(method, path, content=body, headers=JSON)
            problem(response, 400, "JSON_TOO_DEEP")
    # a correctly signed webhook whose body is too deep: refused the same way
    for body in (DEEP_ARRAY, DEEP_OBJECT):
        event_id = f"evt_{uuid.uuid4().hex}"
        now = datetime.now(UTC)
        secret = suite.webhook_secret(free_course.org_id)
        headers = {
            **JSON,
            "webhook-id": event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(event_id, now, body.decode()),
        }
        response = suite.anon.post(
            f"/webhooks/payments/{free_course.org_id}", content=body, headers=headers
        )
        problem(response, 400, "JSON_TOO_DEEP")
    assert suite.storefront(free_course.course_id) == storefront_before
    assert suite.player(buyer, free_course) == player_before


def test_text_postgresql_cannot_store_is_400_naming_the_field(suite: Suite) -> None:
    owner = suite.user("owner")
    org_id, _, _ = suite.organization(owner)
    path = f"/organizations/{org_id}/courses"
    cases = [
        (b'{"name": "caf\xe9", "durationDays": 3}', "$.name"),
        (b'{"name": "a\\u0000b", "durationDays": 3}', "$.name"),
        (b'{"name": "ok", "description": "\\u0000", "durationDays": 3}', "$.description"),
    ]
    for body, field in cases:
        answer = problem(owner.client.post(path, content=body, headers=JSON), 400)
        assert answer["code"] == "VALIDATION_FAILED"
        assert [e["path"] for e in answer["errors"]] == [field]
    assert ok(owner.get(path)) == []


def test_numbers_are_not_read_from_strings_or_floats(suite: Suite, paid_course: Course) -> None:
    owner = paid_course.owner
    price = f"/organizations/{paid_course.org_id}/courses/{paid_course.course_id}/price"
    for value in ("100", 1e2, 100.5, True):
        answer = problem(owner.patch(price, {"priceInCents": value}), 400)
        assert answer["code"] == "VALIDATION_FAILED", answer
    assert suite.storefront(paid_course.course_id)["price"]["cents"] == paid_course.price_cents
    courses = f"/organizations/{paid_course.org_id}/courses"
    before = ok(owner.get(courses))
    answer = problem(owner.post(courses, {"name": "x", "durationDays": "3"}), 400)
    assert [e["path"] for e in answer["errors"]] == ["$.durationDays"]
    assert ok(owner.get(courses)) == before


@pytest.mark.parametrize("offset", ["9223372036854775808", "-1", "x"])
def test_an_offset_out_of_range_is_400(suite: Suite, free_course: Course, offset: str) -> None:
    owner = free_course.owner
    base = f"/organizations/{free_course.org_id}"
    for path in (
        f"{base}/leads",
        f"{base}/courses/{free_course.course_id}/entitlements",
        f"{base}/courses/{free_course.course_id}/enrollments",
    ):
        answer = problem(owner.get(path, params={"offset": offset}), 400)
        assert answer["code"] == "VALIDATION_FAILED", (path, answer)
