"""The coupon rules, pure: what a coupon takes off, when it applies, what staff may define."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coursemesh.commerce.domain.coupons import (
    Coupon,
    CouponExhausted,
    CouponInvalid,
    CouponLimitPerBuyer,
    CouponNotActive,
    CouponNotFound,
    CouponRefused,
    CouponUsage,
    discount_of,
    new_coupon,
    quote,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
ORG, COURSE = uuid.uuid4(), uuid.uuid4()


def coupon(**overrides: Any) -> Coupon:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "organization_id": ORG,
        "code": "spring",
        "percent_off": 20,
        "amount_off_cents": None,
        "course_ids": None,
        "valid_from": None,
        "valid_until": None,
        "max_redemptions": None,
        "max_per_buyer": None,
        "now": NOW,
    }
    return new_coupon(**{**values, **overrides})


def test_percentages_round_half_up_and_amounts_never_exceed_the_price() -> None:
    assert discount_of(coupon(percent_off=33), 4999) == 1650
    assert discount_of(coupon(percent_off=50), 999) == 500
    assert discount_of(coupon(percent_off=100), 4900) == 4900
    fixed = coupon(percent_off=None, amount_off_cents=700)
    assert (discount_of(fixed, 4900), discount_of(fixed, 500)) == (700, 500)


def test_codes_are_stored_in_upper_case_and_course_ids_once() -> None:
    c = coupon(code=" spring-25 ", course_ids=[COURSE, COURSE])
    assert (c.code, c.course_ids) == ("SPRING-25", (COURSE,))


@pytest.mark.parametrize(
    "overrides",
    [
        {"code": "a b"},
        {"code": "-LEADING"},
        {"percent_off": None},
        {"amount_off_cents": 100},
        {"percent_off": 0},
        {"percent_off": None, "amount_off_cents": 0},
        {"valid_from": NOW, "valid_until": NOW},
        {"max_redemptions": 0},
        {"max_per_buyer": 0},
        {"course_ids": []},
    ],
)
def test_a_coupon_breaking_a_rule_is_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(CouponInvalid):
        coupon(**overrides)


def test_why_a_coupon_does_not_apply() -> None:
    usage = CouponUsage(total=0, by_buyer=0)

    def price(c: Coupon, *, usage: CouponUsage | None = usage, org: uuid.UUID = ORG) -> int:
        q = quote(4900, "USD", c, organization_id=org, course_id=COURSE, usage=usage, now=NOW)
        return q.total_in_cents

    assert price(coupon()) == 3920
    with pytest.raises(CouponNotFound):
        price(coupon(), org=uuid.uuid4())
    with pytest.raises(CouponRefused):
        price(coupon(course_ids=[uuid.uuid4()]))
    with pytest.raises(CouponNotActive):
        price(coupon(valid_until=NOW))  # the end is exclusive
    with pytest.raises(CouponNotActive):
        price(coupon(valid_from=NOW + timedelta(seconds=1)))
    with pytest.raises(CouponExhausted):
        price(coupon(max_redemptions=3), usage=CouponUsage(total=3, by_buyer=0))
    with pytest.raises(CouponLimitPerBuyer):
        price(coupon(max_per_buyer=1), usage=CouponUsage(total=1, by_buyer=1))
    # without a buyer the caps are not known: the preview shows the price
    assert price(coupon(max_redemptions=1), usage=None) == 3920


def test_no_coupon_is_the_plain_price() -> None:
    q = quote(4900, "EUR", None, organization_id=ORG, course_id=COURSE, usage=None, now=NOW)
    assert (q.price_in_cents, q.discount_in_cents, q.total_in_cents, q.currency) == (
        4900,
        0,
        4900,
        "EUR",
    )
