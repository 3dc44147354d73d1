"""Coupons: an organization's discount codes and the price rule a checkout applies. Pure.

A coupon takes a percentage or a fixed amount off a course's price (the fixed amount in the
course's own currency), for some of the organization's courses or all of them, inside an
optional validity window, with optional caps on its uses in all and per buyer.

A use is counted by the payment it discounts: it *holds* a place under the caps while that
payment is open for a checkout still awaiting it and once it completed (refunded or disputed
later included), and gives its place back when the payment expires, fails or is superseded by
a newer checkout, or when the abandoned checkout is swept (its entitlement no longer pending).
A use that makes the course free holds its place at once (nothing is left to pay)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from coursemesh.chassis.errors import Unprocessable

CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,31}$")
#: The statuses of a paid payment: its coupon use holds its place for good.
SETTLED_PAYMENT_STATUSES = ("completed", "refunded", "disputed")
#: A payment refunded because it completed after a newer checkout had superseded it gave its
#: place back when it was superseded.
RELEASED_REFUND_REASONS = ("late_payment_superseded", "late_payment_already_active")


class CouponInvalid(Unprocessable):
    """A coupon a staff member defines that breaks a rule (code, amounts, window, caps)."""

    code = "COUPON_INVALID"


class CouponCodeTaken(Unprocessable):
    code = "COUPON_CODE_TAKEN"


class CouponRefused(Unprocessable):
    """A coupon a buyer names that does not apply; ``code`` says why."""

    code = "COUPON_NOT_APPLICABLE"


class CouponNotFound(CouponRefused):
    # Also a coupon of another organization: its existence is not the buyer's business.
    code = "COUPON_NOT_FOUND"


class CouponNotActive(CouponRefused):
    code = "COUPON_NOT_ACTIVE"


class CouponExhausted(CouponRefused):
    code = "COUPON_EXHAUSTED"


class CouponLimitPerBuyer(CouponRefused):
    code = "COUPON_LIMIT_PER_BUYER"


def normalize_code(code: str) -> str:
    """Codes are case-insensitive: stored and compared in upper case."""
    return code.strip().upper()


@dataclass(frozen=True, slots=True)
class Coupon:
    id: uuid.UUID
    organization_id: uuid.UUID
    code: str
    percent_off: int | None
    amount_off_cents: int | None
    course_ids: tuple[uuid.UUID, ...] | None  # None: every course of the organization
    valid_from: datetime | None
    valid_until: datetime | None
    max_redemptions: int | None
    max_per_buyer: int | None
    created_at: datetime


def new_coupon(
    *,
    id: uuid.UUID,
    organization_id: uuid.UUID,
    code: str,
    percent_off: int | None,
    amount_off_cents: int | None,
    course_ids: list[uuid.UUID] | None,
    valid_from: datetime | None,
    valid_until: datetime | None,
    max_redemptions: int | None,
    max_per_buyer: int | None,
    now: datetime,
) -> Coupon:
    """A coupon as staff define it, or :class:`CouponInvalid` saying which rule it breaks."""
    normalized = normalize_code(code)
    if not CODE.match(normalized):
        raise CouponInvalid(
            "A code is 3 to 32 letters, digits, '-' or '_', starting with a letter or digit"
        )
    if (percent_off is None) == (amount_off_cents is None):
        raise CouponInvalid("Give exactly one of percentOff and amountOffCents")
    if percent_off is not None and not 1 <= percent_off <= 100:
        raise CouponInvalid("percentOff is between 1 and 100")
    if amount_off_cents is not None and amount_off_cents < 1:
        raise CouponInvalid("amountOffCents is a positive amount in minor units")
    if valid_from and valid_until and valid_until <= valid_from:
        raise CouponInvalid("validUntil must be after validFrom")
    for cap, name in ((max_redemptions, "maxRedemptions"), (max_per_buyer, "maxPerBuyer")):
        if cap is not None and cap < 1:
            raise CouponInvalid(f"{name} is at least 1")
    if course_ids is not None and not course_ids:
        raise CouponInvalid("courseIds, when given, names at least one course")
    return Coupon(
        id=id,
        organization_id=organization_id,
        code=normalized,
        percent_off=percent_off,
        amount_off_cents=amount_off_cents,
        course_ids=None if course_ids is None else tuple(dict.fromkeys(course_ids)),
        valid_from=valid_from,
        valid_until=valid_until,
        max_redemptions=max_redemptions,
        max_per_buyer=max_per_buyer,
        created_at=now,
    )


@dataclass(frozen=True, slots=True)
class CouponUsage:
    """The uses holding a place under the coupon's caps: in all, and the buyer's own."""

    total: int
    by_buyer: int


@dataclass(frozen=True, slots=True)
class Quote:
    """A course's price for one checkout: before and after the coupon (None: no coupon)."""

    price_in_cents: int
    discount_in_cents: int
    total_in_cents: int
    currency: str
    coupon: Coupon | None


def discount_of(coupon: Coupon, price_in_cents: int) -> int:
    """What ``coupon`` takes off ``price_in_cents``: a percentage rounded half up to the
    minor unit, or the fixed amount; never more than the price."""
    if coupon.percent_off is not None:
        off = (price_in_cents * coupon.percent_off + 50) // 100
    else:
        off = coupon.amount_off_cents or 0
    return min(off, price_in_cents)


def quote(
    price_in_cents: int,
    currency: str,
    coupon: Coupon | None,
    *,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    usage: CouponUsage | None,
    now: datetime,
) -> Quote:
    """The price after ``coupon``, or why the coupon does not apply to this course now.
    ``usage`` None: the caps are not checked (a preview without a buyer)."""
    if coupon is None:
        return Quote(price_in_cents, 0, price_in_cents, currency, None)
    if coupon.organization_id != organization_id:
        raise CouponNotFound("No such coupon")
    if coupon.course_ids is not None and course_id not in coupon.course_ids:
        raise CouponRefused("This coupon does not apply to this course")
    if coupon.valid_from is not None and now < coupon.valid_from:
        raise CouponNotActive("This coupon is not valid yet")
    if coupon.valid_until is not None and now >= coupon.valid_until:
        raise CouponNotActive("This coupon has expired")
    if usage is not None:
        if coupon.max_redemptions is not None and usage.total >= coupon.max_redemptions:
            raise CouponExhausted("This coupon has been used as many times as it may be")
        if coupon.max_per_buyer is not None and usage.by_buyer >= coupon.max_per_buyer:
            raise CouponLimitPerBuyer("You have used this coupon as many times as you may")
    off = discount_of(coupon, price_in_cents)
    return Quote(price_in_cents, off, price_in_cents - off, currency, coupon)
