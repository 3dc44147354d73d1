"""A buyer's refund request through the gateway with the sandbox provider: a course sold with
a refund window is refunded on request, and the access ends when the provider confirms it
(the two waits are the provider's own webhooks, later by nature); a course sold without one
is refused at once, and nothing changes."""

from __future__ import annotations

import pytest
from suite import Course, Suite, eventually, ok, problem

pytestmark = pytest.mark.e2e


def sell_with_window(course: Course, days: int | None) -> None:
    plan = ok(
        course.owner.patch(
            f"/organizations/{course.org_id}/courses/{course.course_id}/price",
            {"priceInCents": 4900, "refundWindowDays": days},
        )
    )
    assert plan["refundWindowDays"] == days


def test_a_refund_inside_the_window_ends_the_access(suite: Suite, paid_course: Course) -> None:
    sell_with_window(paid_course, 14)
    buyer = suite.user("refunder")
    bought = suite.checkout(buyer, paid_course)
    suite.pay(bought["paymentPageUrl"])
    suite.player_once_paid(buyer, paid_course)
    asked = ok(
        buyer.post(f"/me/courses/{paid_course.course_id}/refund-request", {"reason": "not for me"}),
        202,
    )
    assert (asked["paymentId"], asked["amountInCents"]) == (bought["paymentId"], 4900)
    eventually(
        lambda: problem(
            buyer.get(f"/me/courses/{paid_course.course_id}"), 403, "ENTITLEMENT_REVOKED"
        ),
        why="the payment provider confirms the refund by a webhook of its own, later",
        what="the refund revokes the entitlement",
    )
    history = ok(buyer.get(f"/me/courses/{paid_course.course_id}/history"))
    assert history["items"][-1]["cause"] == "payment_refunded"


def test_without_a_window_the_request_is_refused(suite: Suite, paid_course: Course) -> None:
    sell_with_window(paid_course, None)
    buyer = suite.user("no-refund")
    bought = suite.checkout(buyer, paid_course)
    suite.pay(bought["paymentPageUrl"])
    suite.player_once_paid(buyer, paid_course)
    problem(
        buyer.post(f"/me/courses/{paid_course.course_id}/refund-request"),
        409,
        "REFUNDS_NOT_OFFERED",
    )
    assert suite.player(buyer, paid_course)["entitlement"]["status"] == "active"
    problem(suite.anon.post(f"/me/courses/{paid_course.course_id}/refund-request"), 401)
