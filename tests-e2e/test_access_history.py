"""The access history through the gateway, as clients calling back to back see it: a buyer's
checkout and a staff revoke show in the staff's and the buyer's views at once, no waiting and
no retry (both views are commerce's own rows, written before the write's answer left)."""

from __future__ import annotations

from typing import Any

import pytest
from suite import Course, Suite, User, ok, problem

pytestmark = pytest.mark.e2e


def staff_history(course: Course, entitlement_id: str, **params: Any) -> Any:
    return ok(
        course.owner.get(
            f"/organizations/{course.org_id}/entitlements/{entitlement_id}/history",
            params=params,
        )
    )


def my_history(buyer: User, course: Course) -> Any:
    return ok(buyer.get(f"/me/courses/{course.course_id}/history"))


def revoke(course: Course, entitlement_id: str, reason: str) -> None:
    revoked = course.owner.post(
        f"/organizations/{course.org_id}/entitlements/{entitlement_id}/revoke",
        {"reason": reason},
    )
    assert ok(revoked)["status"] == "revoked"


def steps(page: Any) -> list[tuple[Any, ...]]:
    return [(e["cause"], e["toStatus"], e["actorType"]) for e in page["items"]]


def test_a_free_purchase_then_a_staff_revoke_show_in_both_views_at_once(
    suite: Suite, free_course: Course
) -> None:
    buyer = suite.user("history")
    bought = suite.checkout(buyer, free_course)
    ent_id = bought["entitlementId"]
    revoke(free_course, ent_id, "refund by hand")

    staff = staff_history(free_course, ent_id)
    assert steps(staff) == [
        ("free_checkout", "active", "buyer"),
        ("staff_revoked", "revoked", "staff"),
    ]
    assert [e["actor"] for e in staff["items"]] == [
        f"user:{buyer.sub}",
        f"user:{free_course.owner.sub}",
    ]
    assert [e["paymentId"] for e in staff["items"]] == [None, None]

    mine = my_history(buyer, free_course)
    assert steps(mine) == steps(staff)
    # the buyer is told a staff member revoked it, and why, not who
    assert (mine["items"][1]["actor"], mine["items"][1]["reason"]) == (None, "refund by hand")
    assert free_course.owner.sub not in str(mine)


def test_a_paid_checkout_names_its_payment_in_both_views(suite: Suite, paid_course: Course) -> None:
    buyer = suite.user("history-paid")
    bought = suite.checkout(buyer, paid_course)
    ent_id, payment_id = bought["entitlementId"], bought["paymentId"]
    revoke(paid_course, ent_id, "duplicate order")

    staff = staff_history(paid_course, ent_id)
    assert steps(staff) == [
        ("paid_checkout", "pending", "buyer"),
        ("staff_revoked", "revoked", "staff"),
    ]
    opened = staff["items"][0]
    assert opened["paymentId"] == payment_id
    assert opened["payment"] == {"status": "pending", "amountInCents": 4900, "currency": "EUR"}
    page = staff_history(paid_course, ent_id, limit=1, offset=1)
    assert (page["total"], [e["cause"] for e in page["items"]]) == (2, ["staff_revoked"])

    mine = my_history(buyer, paid_course)
    assert [e["paymentId"] for e in mine["items"]] == [payment_id, None]


def test_nobody_else_reads_a_buyers_history(suite: Suite, free_course: Course) -> None:
    buyer, stranger = suite.user("history-owner"), suite.user("history-stranger")
    ent_id = suite.checkout(buyer, free_course)["entitlementId"]
    problem(
        stranger.get(f"/me/courses/{free_course.course_id}/history"), 404, "ENTITLEMENT_NOT_FOUND"
    )
    problem(
        stranger.get(f"/organizations/{free_course.org_id}/entitlements/{ent_id}/history"),
        404,
        "NOT_FOUND",
    )
    problem(suite.anon.get(f"/me/courses/{free_course.course_id}/history"), 401)
