"""Time-limited access through the gateway with the sandbox provider: a course sold for 30 days
opens with its end, and buying it again while it lasts moves that end by 30 days while the
player stays open (the waits are the provider's own webhooks, later by nature). The end itself
and the notice before it run on the worker's clock; integration tests drive that clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from suite import Course, Suite, eventually, ok, problem

pytestmark = pytest.mark.e2e


def sell_for(course: Course, days: int | None) -> None:
    plan = ok(
        course.owner.patch(
            f"/organizations/{course.org_id}/courses/{course.course_id}/price",
            {"priceInCents": 4900, "accessDays": days},
        )
    )
    assert plan["accessDays"] == days


def entitlement_of(course: Course, user_id: str) -> dict[str, Any]:
    page = ok(
        course.owner.get(
            f"/organizations/{course.org_id}/courses/{course.course_id}/entitlements?limit=100"
        )
    )
    [ent] = [e for e in page["items"] if e["userId"] == user_id]
    return ent


def ends(ent: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(ent["accessEndsAt"])


def test_a_renewal_moves_the_end_and_the_player_stays_open(
    suite: Suite, paid_course: Course
) -> None:
    sell_for(paid_course, 30)
    buyer = suite.user("renewer")
    bought = suite.checkout(buyer, paid_course)
    suite.pay(bought["paymentPageUrl"])
    suite.player_once_paid(buyer, paid_course)
    first = entitlement_of(paid_course, buyer.sub)
    assert first["status"] == "active"
    # a lifetime course would answer COURSE_ALREADY_OWNED; this one opens a renewal's payment
    renewal = suite.checkout(buyer, paid_course)
    assert renewal["entitlementId"] == bought["entitlementId"]
    assert renewal["paymentId"] != bought["paymentId"]
    assert suite.player(buyer, paid_course)["entitlement"]["status"] == "active"
    suite.pay(renewal["paymentPageUrl"])

    def moved() -> dict[str, Any]:
        ent = entitlement_of(paid_course, buyer.sub)
        assert ent["sourcePaymentTransactionId"] == renewal["paymentId"]
        return ent

    renewed = eventually(
        moved,
        why="the payment provider confirms the renewal's payment by a webhook, later",
        what="the renewal's completion moves the access's end",
    )
    assert ends(renewed) == ends(first) + timedelta(days=30)
    history = ok(buyer.get(f"/me/courses/{paid_course.course_id}/history"))
    assert [e["cause"] for e in history["items"]][-2:] == ["renewal_checkout", "access_renewed"]
    assert suite.player(buyer, paid_course)["entitlement"]["status"] == "active"


def test_a_lifetime_course_is_still_owned(suite: Suite, paid_course: Course) -> None:
    sell_for(paid_course, None)
    buyer = suite.user("lifetime")
    bought = suite.checkout(buyer, paid_course)
    suite.pay(bought["paymentPageUrl"])
    suite.player_once_paid(buyer, paid_course)
    assert entitlement_of(paid_course, buyer.sub)["accessEndsAt"] is None
    problem(buyer.post(f"/courses/{paid_course.course_id}/checkout"), 409, "COURSE_ALREADY_OWNED")
