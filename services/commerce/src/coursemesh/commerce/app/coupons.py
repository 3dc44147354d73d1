"""Coupons: staff define and list them; anyone previews a course's price with one; a checkout
applies one through :func:`apply_coupon`, the same rule as the preview."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from coursemesh.chassis.staff import require_staff
from coursemesh.commerce.app.ports import CouponStore, CouponSummary
from coursemesh.commerce.domain.checkout import NO_ACTIVE_PLAN, UNAVAILABLE
from coursemesh.commerce.domain.coupons import (
    CODE,
    Coupon,
    CouponCodeTaken,
    CouponInvalid,
    CouponNotFound,
    CouponUsage,
    Quote,
    new_coupon,
    normalize_code,
    quote,
)

FindCoupon = Callable[[uuid.UUID, str], Awaitable[Coupon | None]]
CountUses = Callable[[uuid.UUID, str, uuid.UUID], Awaitable[CouponUsage]]


@dataclass(frozen=True, slots=True)
class CouponDraft:
    code: str
    percent_off: int | None
    amount_off_cents: int | None
    course_ids: list[uuid.UUID] | None
    valid_from: datetime | None
    valid_until: datetime | None
    max_redemptions: int | None
    max_per_buyer: int | None


async def apply_coupon(
    code: str,
    *,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    price_in_cents: int,
    currency: str,
    user_id: str,
    now: datetime,
    find: FindCoupon,
    count: CountUses,
) -> Quote:
    """The course's price after the organization's coupon ``code``, or why it does not apply.
    ``user_id`` empty: no buyer (their own cap is not known, so not checked)."""
    normalized = normalize_code(code)
    found = await find(organization_id, normalized) if CODE.match(normalized) else None
    if found is None:
        raise CouponNotFound("No such coupon")
    usage = await count(found.id, user_id, course_id)
    return quote(
        price_in_cents,
        currency,
        found,
        organization_id=organization_id,
        course_id=course_id,
        usage=usage,
        now=now,
    )


def _now() -> datetime:
    return datetime.now(UTC)


class Coupons:
    def __init__(
        self,
        store: CouponStore,
        *,
        clock: Callable[[], datetime] = _now,
        new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    ) -> None:
        self._store = store
        self._clock = clock
        self._new_id = new_id

    async def create(
        self, organization_id: uuid.UUID, user_id: str, draft: CouponDraft
    ) -> CouponSummary:
        coupon = new_coupon(
            id=self._new_id(),
            organization_id=organization_id,
            code=draft.code,
            percent_off=draft.percent_off,
            amount_off_cents=draft.amount_off_cents,
            course_ids=draft.course_ids,
            valid_from=draft.valid_from,
            valid_until=draft.valid_until,
            max_redemptions=draft.max_redemptions,
            max_per_buyer=draft.max_per_buyer,
            now=self._clock(),
        )
        async with self._store.transaction() as tx:
            await require_staff(tx.directory, organization_id, user_id)
            if coupon.course_ids is not None:
                owners = await tx.course_organizations(list(coupon.course_ids))
                foreign = [c for c in coupon.course_ids if owners.get(c) != organization_id]
                if foreign:
                    raise CouponInvalid(
                        "Not a course of this organization: " + ", ".join(map(str, foreign))
                    )
            if not await tx.add_coupon(coupon, user_id):
                raise CouponCodeTaken(f"This organization already has a coupon {coupon.code}")
        return CouponSummary(coupon, redeemed=0, reserved=0)

    async def listed(
        self, organization_id: uuid.UUID, user_id: str, offset: int, limit: int
    ) -> tuple[list[CouponSummary], int]:
        async with self._store.transaction() as tx:
            await require_staff(tx.directory, organization_id, user_id)
            return await tx.coupons(organization_id, offset, limit)

    async def quote(self, course_id: uuid.UUID, code: str | None, user_id: str | None) -> Quote:
        """A published course's price, with the coupon when one is named; ``user_id`` None: an
        anonymous preview (the buyer's own cap is checked at checkout)."""
        async with self._store.transaction() as tx:
            course = await tx.priced_course(course_id)
            if course is None or course.status != "published":
                raise UNAVAILABLE.error()
            if course.price_in_cents is None or course.currency is None:
                raise NO_ACTIVE_PLAN.error()
            if code is None:
                return quote(
                    course.price_in_cents,
                    course.currency,
                    None,
                    organization_id=course.organization_id,
                    course_id=course_id,
                    usage=None,
                    now=self._clock(),
                )
            return await apply_coupon(
                code,
                organization_id=course.organization_id,
                course_id=course_id,
                price_in_cents=course.price_in_cents,
                currency=course.currency,
                user_id=user_id or "",
                now=self._clock(),
                find=tx.coupon,
                count=tx.usage,
            )
