"""Coupons through the gateway, as a seller and buyers calling back to back see them: a coupon
made by the owner is usable at once, the quote and the charge agree, a coupon that takes
everything off opens the course in the player without a payment, and a use counts once the
provider confirms its payment (the only wait: the provider's webhook comes later by nature)."""

from __future__ import annotations

from typing import Any

import pytest
from suite import Course, Suite, ok, problem

pytestmark = pytest.mark.e2e


def create(course: Course, **body: Any) -> dict[str, Any]:
    made: dict[str, Any] = ok(
        course.owner.post(f"/organizations/{course.org_id}/coupons", body), 201
    )
    return made


def coupon(course: Course, code: str) -> dict[str, Any]:
    page = ok(course.owner.get(f"/organizations/{course.org_id}/coupons"))
    [found] = [c for c in page["items"] if c["code"] == code]
    return found


def test_a_coupon_is_quoted_charged_and_counted_once_paid(
    suite: Suite, paid_course: Course
) -> None:
    create(paid_course, code="half", percentOff=50, courseIds=[paid_course.course_id])
    buyer = suite.user("coupon-buyer")
    quote = ok(buyer.get(f"/courses/{paid_course.course_id}/quote", params={"coupon": "HALF"}))
    assert (quote["priceInCents"], quote["totalInCents"]) == (4900, 2450)
    bought = ok(
        buyer.post(f"/courses/{paid_course.course_id}/checkout", {"couponCode": "half"}), 201
    )
    page = suite.pay_page(bought["paymentPageUrl"], "Pay")
    assert page.status_code == 303, page.text[:500]
    half = coupon(paid_course, "HALF")
    # (1, 0) while the provider's webhook has not arrived, (0, 1) once it has
    assert (half["reserved"], half["redemptions"]) in ((1, 0), (0, 1))
    view = suite.player_once_paid(buyer, paid_course)
    assert view["entitlement"]["status"] == "active"

    # the entitlement and the coupon's count follow from the same webhook, in one transaction
    assert coupon(paid_course, "HALF")["redemptions"] == 1
    history = ok(buyer.get(f"/me/courses/{paid_course.course_id}/history"))
    assert history["items"][0]["reason"] == "coupon HALF"
    assert history["items"][0]["payment"]["amountInCents"] == 2450


def test_a_full_discount_opens_the_course_at_once(suite: Suite, paid_course: Course) -> None:
    create(paid_course, code="ONTHEHOUSE", percentOff=100, maxRedemptions=1)
    lucky, late = suite.user("coupon-lucky"), suite.user("coupon-late")
    bought = ok(
        lucky.post(f"/courses/{paid_course.course_id}/checkout", {"couponCode": "onthehouse"}),
        201,
    )
    assert (bought["paymentPageUrl"], bought["paymentId"]) == (None, None)
    view = suite.player(lucky, paid_course)
    assert view["entitlement"]["status"] == "active"
    assert coupon(paid_course, "ONTHEHOUSE")["redemptions"] == 1
    problem(
        late.post(f"/courses/{paid_course.course_id}/checkout", {"couponCode": "ONTHEHOUSE"}),
        422,
        "COUPON_EXHAUSTED",
    )
    problem(
        suite.anon.get(f"/courses/{paid_course.course_id}/quote", params={"coupon": "NOPE"}),
        422,
        "COUPON_NOT_FOUND",
    )


def test_a_stranger_sees_no_coupons(suite: Suite, paid_course: Course) -> None:
    stranger = suite.user("coupon-stranger")
    problem(stranger.get(f"/organizations/{paid_course.org_id}/coupons"), 404, "NOT_FOUND")
    problem(
        stranger.post(
            f"/organizations/{paid_course.org_id}/coupons", {"code": "MINE", "percentOff": 90}
        ),
        404,
        "NOT_FOUND",
    )
