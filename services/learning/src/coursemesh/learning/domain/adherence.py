"""Pure rules of adherence: how much of what was due a buyer did, and how regularly.

Everything counts in the schedule's days (``domain/schedule.py``): the current day is the
player's ``currentDayOffset`` (the buyer's zone, pauses taken out), and a completion is placed
on the day that was current on its local calendar date (the buyer's zone of the request):

- a **workout day** is a day of the dense curriculum that is not a rest day and has items (an
  empty day has nothing to do, so it is treated as a rest day);
- **due items** are the items of the workout days ``0 .. currentDayOffset`` (today's included);
- a due item is **completed** when it is, whenever that was (on time or late), and **on time**
  when the day current at its completion was not after the item's day: completing day n while
  day n (or an earlier day) was current. A pause keeps the day current, so completing a day on
  the day a pause ends is still on time; completing ahead (an ``open`` course) is on time;
- ``adherencePercent = floor(completed due items * 100 / due items)``; null when nothing is due
  (not started, or before the start date);
- a workout day is **kept** when every item of it was completed on time;
- ``currentStreak``: the kept workout days in a row going back from yesterday (the days before
  the current one), plus today's when it is already kept (an unfinished today does not break
  the streak: the day is not over); rest days are skipped: they neither break nor extend it;
- ``longestStreak``: the most kept workout days in a row among the due ones (at least
  ``currentStreak``).

A completion of an item the curriculum no longer has counts for nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

import msgspec

from coursemesh.learning.domain.model import Day, Pause
from coursemesh.learning.domain.player import dense_days
from coursemesh.learning.domain.schedule import day_offset_on


class PlannedDay(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One workout day: its offset and its items' ids (canonical UUID text)."""

    day_offset: int
    item_ids: tuple[str, ...]


class Adherence(msgspec.Struct, frozen=True, kw_only=True):
    due_items: int
    completed_due_items: int  # on time or late
    completed_late: int
    adherence_percent: int | None  # None: nothing is due yet
    current_streak: int
    longest_streak: int


NOTHING_DUE = Adherence(
    due_items=0,
    completed_due_items=0,
    completed_late=0,
    adherence_percent=None,
    current_streak=0,
    longest_streak=0,
)


def planned_days(days: Sequence[Day], length: int) -> tuple[PlannedDay, ...]:
    """The workout days of the dense curriculum ``0 .. length-1``, in order (the same for every
    buyer of a curriculum copy: kept with what is rendered from it)."""
    return tuple(
        PlannedDay(day_offset=d.day_offset, item_ids=tuple(str(i.item_id) for i in d.items))
        for d in dense_days(length, days)
        if not d.is_rest and d.items
    )


def completion_days(
    completed: Iterable[tuple[str, datetime]],
    zone: ZoneInfo,
    start_date: date,
    pauses: Sequence[Pause],
    max_pause_days: int | None,
) -> dict[str, int]:
    """Item id -> the day of the schedule that was current on the completion's local date
    (``pauses``: the run's)."""
    by_date: dict[date, int] = {}
    out: dict[str, int] = {}
    for item_id, at in completed:
        local = at.astimezone(zone).date()
        day = by_date.get(local)
        if day is None:
            day = by_date[local] = (
                (local - start_date).days
                if not pauses
                else day_offset_on(start_date, pauses, max_pause_days, local)
            )
        out[item_id] = day
    return out


def adherence(
    plan: Sequence[PlannedDay], completed_on: Mapping[str, int], current_day_offset: int | None
) -> Adherence:
    """The figures on the day ``current_day_offset`` (None: not started). ``completed_on``:
    item id -> the day current when it was completed (:func:`completion_days`)."""
    if current_day_offset is None or current_day_offset < 0:
        return NOTHING_DUE
    due = done = late = 0
    run = longest = 0
    for day in plan:
        offset = day.day_offset
        if offset > current_day_offset:
            break
        kept = True
        for item_id in day.item_ids:
            on = completed_on.get(item_id)
            if on is None:
                kept = False
                continue
            done += 1
            if on > offset:
                late += 1
                kept = False
        due += len(day.item_ids)
        if kept:
            run += 1
            longest = max(longest, run)
        elif offset < current_day_offset:
            run = 0
        # else: today, not kept yet: the day is not over, the streak up to yesterday stands
    if due == 0:
        return NOTHING_DUE
    return Adherence(
        due_items=due,
        completed_due_items=done,
        completed_late=late,
        adherence_percent=done * 100 // due,
        current_streak=run,
        longest_streak=longest,
    )


def enrollment_adherence(
    plan: Sequence[PlannedDay],
    completed: Iterable[tuple[str, datetime]],
    zone: ZoneInfo,
    start_date: date | None,
    current_day_offset: int | None,
    pauses: Sequence[Pause],
    max_pause_days: int | None,
) -> Adherence:
    """The figures of one run: ``completed`` its (item id, completion instant) pairs, ``zone``
    the buyer's, ``pauses`` the run's, ``current_day_offset`` the schedule's today."""
    if start_date is None or current_day_offset is None or current_day_offset < 0:
        return NOTHING_DUE
    return adherence(
        plan,
        completion_days(completed, zone, start_date, pauses, max_pause_days),
        current_day_offset,
    )


def median_percent(percents: Sequence[int]) -> int | None:
    """The median of the buyers' percents (those with something due); the mean of the two
    middle ones, rounded down, for an even count; None for no buyer."""
    ordered = sorted(percents)
    count = len(ordered)
    if count == 0:
        return None
    middle = count // 2
    if count % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) // 2
