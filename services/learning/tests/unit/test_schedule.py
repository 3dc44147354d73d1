"""Drip release and pauses as pure rules, on a controllable clock (unit: no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

from coursemesh.chassis.errors import Conflict
from coursemesh.learning.domain.model import Clock, CourseDetails, Enrollment, Pause
from coursemesh.learning.domain.schedule import (
    close_on_restart,
    counted_days,
    decide_pause,
    decide_resume,
    decide_unlock,
    require_day_open,
    schedule,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2025, 3, 3, 10, tzinfo=UTC)


def _course(
    release_mode: str = "daily", max_pauses: int | None = None, max_pause_days: int | None = None
) -> CourseDetails:
    return CourseDetails(
        course_id=uuid.UUID(int=2),
        organization_id=uuid.UUID(int=1),
        name="30-day reset",
        image_url=None,
        duration_days=30,
        status="published",
        curriculum_version=1,
        release_mode=release_mode,
        max_pauses=max_pauses,
        max_pause_days=max_pause_days,
    )


def _enrollment(start: date | None = date(2025, 3, 1), run: int = 0) -> Enrollment:
    return Enrollment(
        entitlement_id=uuid.UUID(int=7),
        start_date=start,
        completed_at=None,
        restart_count=run,
        last_activity_at=None,
        version=1,
    )


def _pause(on: date, resumed: date | None = None, run: int = 0) -> Pause:
    return Pause(
        run=run,
        paused_on=on,
        paused_at=NOW,
        paused_by="user_buyer",
        resumed_on=resumed,
        resumed_at=None if resumed is None else NOW,
        resumed_by=None if resumed is None else "user_buyer",
        days=None if resumed is None else (resumed - on).days,
    )


def _today(instant: datetime, zone: ZoneInfo) -> date:
    return Clock(now=instant, zone=zone).today


# --- drip release --------------------------------------------------------------------------


def test_day_n_opens_on_start_plus_n_in_the_buyers_zone() -> None:
    plan = schedule(_course(), _enrollment(), [], date(2025, 3, 3))
    assert plan.current_day_offset == 2
    assert [plan.locked(n) for n in range(4)] == [False, False, False, True]
    assert plan.opens_on(3) == date(2025, 3, 4)
    assert plan.first_locked(30) == 3


def test_the_same_instant_opens_different_days_in_different_zones() -> None:
    # 2025-03-03 03:30 UTC: still 03-02 in New York, already 03-03 in Berlin.
    instant = datetime(2025, 3, 3, 3, 30, tzinfo=UTC)
    in_berlin = schedule(_course(), _enrollment(), [], _today(instant, BERLIN))
    in_new_york = schedule(_course(), _enrollment(), [], _today(instant, NEW_YORK))
    assert in_berlin.locked(2) is False
    assert in_new_york.locked(2) is True
    assert in_new_york.opens_on(2) == date(2025, 3, 3)


def test_a_dst_change_neither_skips_nor_repeats_a_day() -> None:
    # Berlin springs forward on 2025-03-30 (a 23-hour day), New York on 2025-03-09.
    start = date(2025, 3, 29)
    before = datetime(2025, 3, 29, 22, 59, tzinfo=UTC)  # 23:59 CET on 03-29: day 0
    after = datetime(2025, 3, 29, 23, 0, tzinfo=UTC)  # 00:00 CET on 03-30: day 1 opens
    next_midnight = datetime(2025, 3, 30, 22, 0, tzinfo=UTC)  # 00:00 CEST on 03-31: day 2
    offsets = [
        schedule(_course(), _enrollment(start), [], _today(t, BERLIN)).current_day_offset
        for t in (before, after, next_midnight)
    ]
    assert offsets == [0, 1, 2]
    ny_start = date(2025, 3, 8)
    ny_midnight = datetime(2025, 3, 10, 4, 0, tzinfo=UTC)  # 00:00 EDT on 03-10
    plan = schedule(_course(), _enrollment(ny_start), [], _today(ny_midnight, NEW_YORK))
    assert plan.current_day_offset == 2
    assert plan.opens_on(3) == date(2025, 3, 11)


def test_not_started_locks_every_day_and_dates_none() -> None:
    plan = schedule(_course(), _enrollment(start=None), [], date(2025, 3, 3))
    assert plan.current_day_offset is None
    assert plan.locked(0)
    assert plan.opens_on(0) is None
    assert schedule(_course(), None, [], date(2025, 3, 3)).first_locked(5) == 0


def test_open_release_and_a_staff_unlock_lock_nothing() -> None:
    today = date(2025, 3, 3)
    assert schedule(_course("open"), _enrollment(), [], today).first_locked(30) == 30
    unlocked = decide_unlock(_enrollment(), "user_trainer", "travelling", NOW)
    assert unlocked.unlocked_by == "user_trainer"
    assert unlocked.unlock_reason == "travelling"
    assert schedule(_course(), unlocked, [], today).first_locked(30) == 30


def test_completing_a_locked_day_is_refused() -> None:
    plan = schedule(_course(), _enrollment(), [], date(2025, 3, 3))
    require_day_open(plan, 2)
    with pytest.raises(Conflict) as refused:
        require_day_open(plan, 3)
    assert refused.value.code == "DAY_LOCKED"


# --- pause and resume arithmetic -------------------------------------------------------------


def test_a_pause_stops_the_current_day_and_a_resume_shifts_the_schedule() -> None:
    # Start 03-01, paused on 03-04 (day 3), resumed on 03-09: 5 days shifted.
    course = _course()
    paused = decide_pause(course, _enrollment(), [], date(2025, 3, 4), NOW, "user_buyer")
    assert paused.paused_on == date(2025, 3, 4)
    for today in (date(2025, 3, 4), date(2025, 3, 6), date(2025, 3, 8)):
        plan = schedule(course, _enrollment(), [paused], today)
        assert plan.current_day_offset == 3
        assert plan.paused_since == date(2025, 3, 4)
        assert plan.opens_on(4) is None  # nothing is due while paused
    resumed = decide_resume(course, _enrollment(), [paused], date(2025, 3, 9), NOW, "user_buyer")
    assert resumed.days == 5
    plan = schedule(course, _enrollment(), [resumed], date(2025, 3, 9))
    assert plan.current_day_offset == 3
    assert plan.paused is False
    assert plan.opens_on(4) == date(2025, 3, 10)  # 03-01 + 4 + 5


def test_pausing_and_resuming_the_same_day_shifts_nothing() -> None:
    course = _course()
    paused = decide_pause(course, _enrollment(), [], date(2025, 3, 4), NOW, "user_buyer")
    resumed = decide_resume(course, _enrollment(), [paused], date(2025, 3, 4), NOW, "user_buyer")
    assert resumed.days == 0
    assert schedule(course, _enrollment(), [resumed], date(2025, 3, 5)).current_day_offset == 4


def test_several_pauses_add_up() -> None:
    pauses = [
        _pause(date(2025, 3, 2), date(2025, 3, 4)),
        _pause(date(2025, 3, 6), date(2025, 3, 7)),
    ]
    plan = schedule(_course(), _enrollment(), pauses, date(2025, 3, 10))
    assert plan.paused_days == 3
    assert plan.current_day_offset == 6  # 9 days since the start, 3 of them paused


def test_a_pause_counts_at_most_the_remaining_pause_days() -> None:
    # maxPauseDays 4, 1 already used: a pause from 03-05 counts at most 3 days.
    course = _course(max_pause_days=4)
    pauses = [_pause(date(2025, 3, 2), date(2025, 3, 3)), _pause(date(2025, 3, 5))]
    plan = schedule(course, _enrollment(), pauses, date(2025, 3, 20))
    assert plan.paused_days == 4
    assert plan.current_day_offset == 15  # the schedule ran again after the third day
    resumed = decide_resume(course, _enrollment(), pauses, date(2025, 3, 20), NOW, "user_buyer")
    assert resumed.days == 3
    assert counted_days(10, 1, None) == 10
    assert counted_days(10, 5, 4) == 0


def test_only_the_current_runs_pauses_count() -> None:
    old = _pause(date(2025, 2, 1), date(2025, 2, 11), run=0)
    plan = schedule(_course(), _enrollment(run=1), [old], date(2025, 3, 3))
    assert plan.paused_days == 0
    assert plan.current_day_offset == 2


def test_a_restart_ends_the_pause_under_way() -> None:
    under_way = _pause(date(2025, 3, 2))
    ended = close_on_restart([under_way], 0, date(2025, 3, 5), NOW)
    assert ended is not None
    assert ended.resumed_on == date(2025, 3, 5)
    assert close_on_restart([under_way], 1, date(2025, 3, 5), NOW) is None


# --- refusals and limits -------------------------------------------------------------------


def _refusal(
    course: CourseDetails, enrollment: Enrollment, pauses: list[Pause], resume: bool = False
) -> str:
    decide = decide_resume if resume else decide_pause
    with pytest.raises(Conflict) as refused:
        decide(course, enrollment, pauses, date(2025, 3, 10), NOW, "user_buyer")
    return refused.value.code


def test_pause_and_resume_refusals() -> None:
    course = _course()
    assert _refusal(course, _enrollment(), [_pause(date(2025, 3, 2))]) == "ALREADY_PAUSED"
    assert _refusal(course, _enrollment(start=None), []) == "NOT_STARTED"
    done = msgspec.structs.replace(_enrollment(), completed_at=NOW)
    assert _refusal(course, done, []) == "COURSE_COMPLETED"
    assert _refusal(course, _enrollment(), [], resume=True) == "NOT_PAUSED"
    closed = [_pause(date(2025, 3, 2), date(2025, 3, 3))]
    assert _refusal(course, _enrollment(), closed, resume=True) == "NOT_PAUSED"


def test_pause_limits_per_run() -> None:
    two = [_pause(date(2025, 3, 2), date(2025, 3, 3)), _pause(date(2025, 3, 4), date(2025, 3, 5))]
    assert _refusal(_course(max_pauses=2), _enrollment(), two) == "PAUSE_LIMIT_REACHED"
    assert _refusal(_course(max_pause_days=2), _enrollment(), two) == "PAUSE_DAYS_EXHAUSTED"
    # Limits count the current run only; null is unlimited.
    decide_pause(_course(max_pauses=2), _enrollment(run=1), two, date(2025, 3, 10), NOW, "u")
    decide_pause(_course(), _enrollment(), two, date(2025, 3, 10), NOW, "u")
    assert _refusal(_course(max_pauses=0), _enrollment(), []) == "PAUSE_LIMIT_REACHED"
