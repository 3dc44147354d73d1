"""Pure rules of the player: access, the current day, which occurrence a completion is about.

No I/O here: the use cases load the state, ask these functions, and store the answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from coursemesh.chassis.errors import BadRequest, Forbidden, NotFound, Unprocessable

UTC_ZONE = ZoneInfo("UTC")

# A start date further than this from the buyer's today is a typo, not a plan.
START_DATE_WINDOW = timedelta(days=366)


# Curricula are decoded into these and cached (no cycles possible): untracked by the collector.
class Item(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One workout on one day: the unit a completion is recorded for."""

    item_id: uuid.UUID
    workout_id: uuid.UUID
    position: int


class Day(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    day_offset: int
    is_rest: bool
    items: list[Item]


class Occurrence(msgspec.Struct, frozen=True, kw_only=True):
    """Where a workout appears: the item and the day it is on."""

    item_id: uuid.UUID
    workout_id: uuid.UUID
    day_offset: int


class Access(msgspec.Struct, frozen=True, kw_only=True):
    """What the projection says of the caller's entitlement to a course."""

    status: str
    access_revoked: bool


# --- time ------------------------------------------------------------------------------------


def parse_time_zone(name: str | None) -> ZoneInfo:
    """The buyer's IANA zone; UTC when none is given."""
    if name is None or name == "":
        return UTC_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(
            f"{name!r} is not an IANA time zone name", code="INVALID_TIME_ZONE"
        ) from None


def today_in(zone: ZoneInfo, now: datetime) -> date:
    return now.astimezone(zone).date()


def current_day_offset(start_date: date | None, today: date) -> int | None:
    """Day n of the course: floor((today - startDate) / 1 day); negative before the start."""
    if start_date is None:
        return None
    return (today - start_date).days


def check_start_date(start_date: date, today: date) -> None:
    if abs(start_date - today) > START_DATE_WINDOW:
        raise Unprocessable(
            f"startDate must be within {START_DATE_WINDOW.days} days of today ({today})",
            code="START_DATE_OUT_OF_RANGE",
        )


# --- access ----------------------------------------------------------------------------------


def require_access(access: Access | None) -> None:
    """Only an active entitlement opens the player; another buyer's course is simply unknown."""
    if access is None:
        raise NotFound("You do not own this course", code="COURSE_NOT_OWNED")
    if access.status == "revoked" or access.access_revoked:
        raise Forbidden("Access to this course was revoked", code="ENTITLEMENT_REVOKED")
    if access.status == "pending":
        raise Forbidden("The payment for this course is in flight", code="ENTITLEMENT_PENDING")
    if access.status != "active":
        raise Forbidden("This course is not accessible", code="ENTITLEMENT_INACTIVE")


# --- curriculum ------------------------------------------------------------------------------


def curriculum_length(days: Sequence[Day], duration_days: int | None) -> int:
    """Days of the dense curriculum: the curriculum's own length, else the course details'."""
    if days:
        return len(days)
    return duration_days or 0


def dense_days(duration_days: int, days: Sequence[Day]) -> list[Day]:
    """Every day 0..duration_days-1, in order; a day the curriculum does not mention is empty."""
    by_offset = {d.day_offset: d for d in days}
    return [
        by_offset.get(offset, Day(day_offset=offset, is_rest=False, items=[]))
        for offset in range(duration_days)
    ]


def occurrences(days: Iterable[Day], workout_id: uuid.UUID) -> list[Occurrence]:
    """The items of ``workout_id`` in day order (a workout may be on several days)."""
    return [
        Occurrence(item_id=item.item_id, workout_id=item.workout_id, day_offset=day.day_offset)
        for day in sorted(days, key=lambda d: d.day_offset)
        for item in sorted(day.items, key=lambda i: i.position)
        if item.workout_id == workout_id
    ]


def workout_item_ids(days: Iterable[Day]) -> set[uuid.UUID]:
    return {item.item_id for day in days for item in day.items}


def require_in_course(days: Iterable[Day], workout_id: uuid.UUID) -> list[Occurrence]:
    """The workout's occurrences; 404 when it is not in the curriculum (the seed's probe case:
    a workout of the same organization's library that this course does not use)."""
    found = occurrences(days, workout_id)
    if not found:
        raise NotFound("This workout is not part of the course", code="WORKOUT_NOT_IN_COURSE")
    return found


def _on_day(days: Sequence[Day], found: list[Occurrence], day_offset: int) -> Occurrence:
    for occurrence in found:
        if occurrence.day_offset == day_offset:
            return occurrence
    if any(d.day_offset == day_offset and d.is_rest for d in days):
        raise NotFound("A rest day cannot be completed", code="REST_DAY")
    raise NotFound(f"This workout is not scheduled on day {day_offset}", code="WORKOUT_NOT_ON_DAY")


def occurrence_to_complete(
    days: Sequence[Day],
    workout_id: uuid.UUID,
    completed: set[uuid.UUID],
    day_offset: int | None,
) -> Occurrence:
    """The item a mark-complete is about: the given day's, else the earliest not yet completed
    (the earliest of all when every occurrence is complete: the repeat is then a no-op)."""
    found = require_in_course(days, workout_id)
    if day_offset is not None:
        return _on_day(days, found, day_offset)
    open_ones = [o for o in found if o.item_id not in completed]
    return open_ones[0] if open_ones else found[0]


def occurrence_to_unmark(
    days: Sequence[Day],
    workout_id: uuid.UUID,
    completed: set[uuid.UUID],
    day_offset: int | None,
) -> Occurrence | None:
    """The item an unmark is about: the given day's, else the latest completed one (None when
    nothing is completed: the unmark is then a no-op)."""
    found = require_in_course(days, workout_id)
    if day_offset is not None:
        return _on_day(days, found, day_offset)
    done = [o for o in found if o.item_id in completed]
    return done[-1] if done else None


def is_course_complete(days: Iterable[Day], completed: set[uuid.UUID]) -> bool:
    """Complete when every workout item is; a curriculum without workouts never is."""
    items = workout_item_ids(days)
    return bool(items) and items <= completed
