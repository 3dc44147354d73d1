"""Adherence figures as pure rules, on a hand-computed calendar (unit: no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from coursemesh.learning.domain.adherence import (
    NOTHING_DUE,
    Adherence,
    adherence,
    enrollment_adherence,
    median_percent,
    planned_days,
)
from coursemesh.learning.domain.model import Day, Item, Pause
from coursemesh.learning.domain.schedule import day_offset_on

LOS_ANGELES = ZoneInfo("America/Los_Angeles")  # UTC-8 in these early-March days
START = date(2025, 3, 1)


def _id(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_OID, name)


def _day(offset: int, *names: str, rest: bool = False) -> Day:
    return Day(
        day_offset=offset,
        is_rest=rest,
        items=[
            Item(item_id=_id(n), workout_id=_id("w" + n), position=p) for p, n in enumerate(names)
        ],
    )


DAYS = [
    _day(0, "a1", "a2"),
    _day(1, rest=True),
    _day(2, "b1"),
    _day(3, "c1"),
    _day(4, rest=True),
    _day(5, "d1", "d2"),
    _day(6, "e1"),
    _day(7, "f1"),
]
PLAN = planned_days(DAYS, 8)
# Paused on Wed 03-05 (day 4, a rest day), resumed on Fri 03-07: 2 days.
PAUSES = [
    Pause(
        run=0,
        paused_on=date(2025, 3, 5),
        paused_at=datetime(2025, 3, 5, 18, tzinfo=UTC),
        paused_by="user_ann",
        resumed_on=date(2025, 3, 7),
        resumed_at=datetime(2025, 3, 7, 18, tzinfo=UTC),
        resumed_by="user_ann",
        days=2,
    )
]
COMPLETED = [
    (str(_id("a1")), datetime(2025, 3, 1, 18, 0, tzinfo=UTC)),  # Sat 03-01 10:00 LA
    (str(_id("a2")), datetime(2025, 3, 2, 3, 0, tzinfo=UTC)),  # Sat 03-01 19:00 LA
    (str(_id("b1")), datetime(2025, 3, 4, 17, 0, tzinfo=UTC)),  # Tue 03-04 09:00 LA
    (str(_id("c1")), datetime(2025, 3, 4, 20, 0, tzinfo=UTC)),  # Tue 03-04 12:00 LA
    (str(_id("d1")), datetime(2025, 3, 8, 17, 0, tzinfo=UTC)),  # Sat 03-08 09:00 LA
    (str(_id("d2")), datetime(2025, 3, 9, 7, 30, tzinfo=UTC)),  # Sat 03-08 23:30 LA
]


def _figures(completed: list[tuple[str, datetime]], zone: ZoneInfo, today: date) -> Adherence:
    current = day_offset_on(START, PAUSES, None, today)
    return enrollment_adherence(PLAN, completed, zone, START, current, PAUSES, None)


def test_the_hand_computed_calendar_in_los_angeles() -> None:
    """Start Sat 2025-03-01, learner in America/Los_Angeles, today Sun 03-09.

    | date  | day | planned   | done (LA local)                 |
    |-------|-----|-----------|---------------------------------|
    | 03-01 | 0   | a1, a2    | a1 10:00, a2 19:00 (03-02 UTC)  |
    | 03-02 | 1   | rest      |                                 |
    | 03-03 | 2   | b1        | b1 on 03-04 (day 3): late       |
    | 03-04 | 3   | c1        | c1 12:00                        |
    | 03-05 | 4   | rest      | paused on 03-05                 |
    | 03-06 | 4   | (paused)  |                                 |
    | 03-07 | 4   | (resumed) | the pause counts 2 days         |
    | 03-08 | 5   | d1, d2    | d1 09:00, d2 23:30 (03-09 UTC)  |
    | 03-09 | 6   | e1        | today, not done yet             |
    | 03-10 | 7   | f1        | not due                         |

    Due: a1 a2 b1 c1 d1 d2 e1 = 7; completed 6 (b1 late): 6 * 100 // 7 = 85 %.
    Kept days: 0 yes, 2 no (late), 3 yes, 5 yes, 6 open (today). currentStreak = days 3 and 5
    (rest day 4 skipped, today not over) = 2; longestStreak = 2.
    """
    assert day_offset_on(START, PAUSES, None, date(2025, 3, 9)) == 6
    figures = _figures(COMPLETED, LOS_ANGELES, date(2025, 3, 9))
    assert figures.due_items == 7
    assert figures.completed_due_items == 6
    assert figures.completed_late == 1
    assert figures.adherence_percent == 85
    assert (figures.current_streak, figures.longest_streak) == (2, 2)


def test_today_done_extends_the_streak() -> None:
    """The calendar above, and e1 done on Sun 03-09 08:00 LA: every due item but b1 is kept,
    7 of 7 completed = 100 %; days 3, 5 and 6 kept: currentStreak = longestStreak = 3."""
    done = [*COMPLETED, (str(_id("e1")), datetime(2025, 3, 9, 16, tzinfo=UTC))]
    figures = _figures(done, LOS_ANGELES, date(2025, 3, 9))
    assert figures.adherence_percent == 100
    assert (figures.current_streak, figures.longest_streak) == (3, 3)


def test_a_missed_day_ends_the_current_streak_but_not_the_longest() -> None:
    """The calendar above on Mon 03-10 (day 7): e1 (day 6) was never done. Due 8, completed 6:
    75 %; day 6 missed and today (7) not done: currentStreak 0, longestStreak 2 (days 3, 5)."""
    figures = _figures(COMPLETED, LOS_ANGELES, date(2025, 3, 10))
    assert figures.adherence_percent == 75
    assert (figures.current_streak, figures.longest_streak) == (0, 2)


def test_the_same_instants_in_utc_land_on_other_days() -> None:
    """In UTC a2 (03-02 03:00Z) is on day 1 and d2 (03-09 07:30Z) on day 6: both late. Still
    6 of 7 completed (85 %), but only day 3 is kept: currentStreak 0 (day 5 broken),
    longestStreak 1."""
    figures = _figures(COMPLETED, ZoneInfo("UTC"), date(2025, 3, 9))
    assert figures.adherence_percent == 85
    assert figures.completed_late == 3
    assert (figures.current_streak, figures.longest_streak) == (0, 1)


def test_during_a_pause_the_day_it_began_stays_current() -> None:
    """c1 (day 3) done on Thu 03-06, while paused on day 4: the day current then was 4, so late;
    d1 done during the pause (day 4 current) is ahead of day 5: on time."""
    assert day_offset_on(START, PAUSES, None, date(2025, 3, 6)) == 4
    assert day_offset_on(START, PAUSES, None, date(2025, 3, 7)) == 4
    assert day_offset_on(START, PAUSES, None, date(2025, 3, 4)) == 3
    done = [
        (str(_id("c1")), datetime(2025, 3, 6, 20, tzinfo=UTC)),
        (str(_id("d1")), datetime(2025, 3, 6, 21, tzinfo=UTC)),
    ]
    plan = planned_days([_day(3, "c1"), _day(5, "d1")], 6)
    figures = enrollment_adherence(plan, done, LOS_ANGELES, START, 5, PAUSES, None)
    assert figures.completed_late == 1
    assert (figures.current_streak, figures.longest_streak) == (1, 1)


def test_a_pause_under_way_holds_the_current_day() -> None:
    """Paused on 03-05 and still paused on 03-09: day 4 stays current, so nothing after it is
    due: a1 a2 b1 c1 = 4 due, all done (b1 late) = 100 %, streak day 3 only (day 2 late)."""
    under_way = [
        Pause(run=0, paused_on=date(2025, 3, 5), paused_at=PAUSES[0].paused_at, paused_by="x")
    ]
    current = day_offset_on(START, under_way, None, date(2025, 3, 9))
    assert current == 4
    figures = enrollment_adherence(PLAN, COMPLETED, LOS_ANGELES, START, current, under_way, None)
    assert figures.due_items == 4
    assert figures.adherence_percent == 100
    assert (figures.current_streak, figures.longest_streak) == (1, 1)


def test_nothing_due_is_null() -> None:
    assert enrollment_adherence(PLAN, [], LOS_ANGELES, None, None, [], None) == NOTHING_DUE
    before = enrollment_adherence(PLAN, [], LOS_ANGELES, START, -2, [], None)
    assert before.adherence_percent is None
    # Day 1 is a rest day, but day 0 is due: 0 of 2.
    assert adherence(PLAN, {}, 1).adherence_percent == 0
    only_rest = planned_days([_day(0, rest=True), _day(1)], 2)
    assert adherence(only_rest, {}, 1).adherence_percent is None


def test_a_completion_of_an_item_no_longer_planned_counts_for_nothing() -> None:
    figures = adherence(PLAN, {str(_id("gone")): 0, str(_id("a1")): 0}, 0)
    assert (figures.due_items, figures.completed_due_items, figures.adherence_percent) == (2, 1, 50)


def test_the_median_of_an_even_count_is_the_mean_of_the_middle_two_rounded_down() -> None:
    assert median_percent([]) is None
    assert median_percent([40]) == 40
    assert median_percent([100, 0, 66]) == 66
    assert median_percent([0, 33, 66, 100]) == 49  # (33 + 66) // 2
