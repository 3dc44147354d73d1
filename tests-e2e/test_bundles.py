"""Bundles through the gateway: the owner bundles two courses of the studio, anyone sees the
bundle, a buyer pays ONE sandbox payment for it and then trains in both courses; a buyer who
owns one course pays the prorated price for the other (the only wait: the provider's webhook
comes later by nature)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from suite import Course, Suite, ok, problem

pytestmark = pytest.mark.e2e


def second_course(course: Course, price_cents: int) -> Course:
    """Another published course of ``course``'s organization, at ``price_cents``."""
    owner, org = course.owner, course.org_id
    made = ok(
        owner.post(
            f"/organizations/{org}/courses",
            {"name": "Mobility week", "description": "One session", "durationDays": 1},
        ),
        201,
    )
    cid = str(made["id"])
    day = ok(
        owner.post(
            f"/organizations/{org}/courses/{cid}/days",
            {"dayOffset": 0, "workoutIds": [course.workout_ids[0]]},
        )
    )
    ok(owner.patch(f"/organizations/{org}/courses/{cid}/price", {"priceInCents": price_cents}))
    ok(owner.post(f"/organizations/{org}/courses/{cid}/publish"))
    return dataclasses.replace(
        course,
        course_id=cid,
        price_cents=price_cents,
        name="Mobility week",
        curriculum_version=int(day["curriculumVersion"]),
    )


def bundle(course: Course, other: Course, price: int) -> dict[str, Any]:
    made: dict[str, Any] = ok(
        course.owner.post(
            f"/organizations/{course.org_id}/bundles",
            {
                "name": "Reset + mobility",
                "courseIds": [course.course_id, other.course_id],
                "priceInCents": price,
            },
        ),
        201,
    )
    return made


def test_one_payment_opens_every_course_of_the_bundle(suite: Suite) -> None:
    first = suite.course(price_cents=3000, name="Paid reset")
    second = second_course(first, 2000)
    made = bundle(first, second, 4000)
    assert made["currency"] == "EUR"
    seen = ok(suite.anon.get(f"/public/bundles/{made['bundleId']}"))
    assert [c["listPriceInCents"] for c in seen["courses"]] == [3000, 2000]

    buyer = suite.user("bundle-buyer")
    bought = ok(
        buyer.post(f"/bundles/{made['bundleId']}/checkout", headers={"Idempotency-Key": "b-1"}),
        201,
    )
    assert (bought["amountInCents"], bought["excludedCourseIds"]) == (4000, [])
    suite.pay(bought["paymentPageUrl"])
    for course in (first, second):
        view = suite.player_once_paid(buyer, course)
        assert view["entitlement"]["status"] == "active"
    library = ok(buyer.get("/me/courses"))
    assert {first.course_id, second.course_id} <= {c["courseId"] for c in library["courses"]}
    history = ok(buyer.get(f"/me/courses/{second.course_id}/history"))
    assert history["items"][0]["payment"]["amountInCents"] == 4000


def test_an_owned_course_is_left_out_and_the_price_prorated(suite: Suite) -> None:
    first = suite.course(price_cents=3000, name="Paid reset")
    second = second_course(first, 2000)
    made = bundle(first, second, 4999)
    buyer = suite.user("bundle-owner-of-one")
    suite.pay(suite.checkout(buyer, first)["paymentPageUrl"])
    suite.player_once_paid(buyer, first)
    bought = ok(buyer.post(f"/bundles/{made['bundleId']}/checkout"), 201)
    # 4999 * 2000 / 5000 = 1999.6 -> 2000
    assert (bought["amountInCents"], bought["excludedCourseIds"]) == (2000, [first.course_id])
    assert [c["courseId"] for c in bought["courses"]] == [second.course_id]
    stranger = suite.user("bundle-stranger")
    problem(stranger.get(f"/organizations/{first.org_id}/bundles"), 404, "NOT_FOUND")
