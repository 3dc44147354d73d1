"""Pure rules of drip release and pauses: which day is current, which days are open, and what a
pause, a resume or a staff unlock decides.

Dates are the buyer's calendar days (the player's ``tz``/``X-Timezone``), so every rule counts
whole days and a daylight-saving change never moves a day:

- ``pausedDays`` of a run = the days of its resumed pauses (each: ``resumedOn - pausedOn``) +
  the days of the pause under way (``today - pausedOn``); a pause counts at most what the
  course's ``maxPauseDays`` leaves, after which the schedule runs again as if resumed.
- ``currentDayOffset = today - startDate - pausedDays``: it stands still while paused.
- ``daily`` release: day n is open once ``n <= currentDayOffset``, so it opens on
  ``startDate + n + pausedDays``; a course not started has every day locked; a staff unlock
  opens every day. ``open`` release: every day is open.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import msgspec

from coursemesh.chassis.errors import Conflict
from coursemesh.learning.domain.model import CourseDetails, Enrollment, Pause

OPEN = "open"
DAILY = "daily"


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    """Where one buyer is in a course today."""

    release_mode: str
    start_date: date | None
    current_day_offset: int | None  # None: not started
    paused_since: date | None  # the day the pause under way began; None: not paused
    paused_days: int  # of the current run, the pause under way included
    unlocked: bool

    @property
    def paused(self) -> bool:
        return self.paused_since is not None

    def locked(self, day_offset: int) -> bool:
        if self.release_mode != DAILY or self.unlocked:
            return False
        current = self.current_day_offset
        return current is None or day_offset > current

    def opens_on(self, day_offset: int) -> date | None:
        """The day a locked day opens; None while paused or not started (nothing is due)."""
        if self.start_date is None or self.paused:
            return None
        return self.start_date + timedelta(days=day_offset + self.paused_days)

    def first_locked(self, length: int) -> int:
        """The first locked day of ``0 .. length-1`` (``length``: none is); the locked days
        are always the last ones."""
        if self.release_mode != DAILY or self.unlocked:
            return length
        current = self.current_day_offset
        if current is None:
            return 0
        return max(0, min(length, current + 1))


def run_pauses(pauses: Sequence[Pause], run: int) -> list[Pause]:
    return [p for p in pauses if p.run == run]


def open_pause(pauses: Sequence[Pause], run: int) -> Pause | None:
    for pause in run_pauses(pauses, run):
        if pause.resumed_on is None:
            return pause
    return None


def _resumed_days(pauses: Sequence[Pause]) -> int:
    return sum(p.days or 0 for p in pauses if p.resumed_on is not None)


def counted_days(elapsed: int, used: int, max_pause_days: int | None) -> int:
    """Days a pause of ``elapsed`` days counts when the run already used ``used``."""
    if max_pause_days is None:
        return max(0, elapsed)
    return max(0, min(elapsed, max_pause_days - used))


def schedule(
    course: CourseDetails,
    enrollment: Enrollment | None,
    pauses: Sequence[Pause],
    today: date,
) -> Schedule:
    """Where the buyer stands today (the player asks on every read: no pause, no loop)."""
    if enrollment is None:
        return Schedule(
            release_mode=course.release_mode,
            start_date=None,
            current_day_offset=None,
            paused_since=None,
            paused_days=0,
            unlocked=False,
        )
    paused_days, paused_since = (
        _paused(run_pauses(pauses, enrollment.restart_count), today, course.max_pause_days)
        if pauses
        else (0, None)
    )
    start = enrollment.start_date
    return Schedule(
        release_mode=course.release_mode,
        start_date=start,
        current_day_offset=None if start is None else (today - start).days - paused_days,
        paused_since=paused_since,
        paused_days=paused_days,
        unlocked=enrollment.unlocked_at is not None,
    )


def schedule_of_row(
    start: date | None, pauses: Sequence[Pause], today: date, max_pause_days: int | None
) -> Schedule:
    """The current day and the pause under way from the run's ``pauses`` (release ``open``,
    not unlocked: what the drill-down shows)."""
    paused_days, paused_since = _paused(pauses, today, max_pause_days)
    return Schedule(
        release_mode=OPEN,
        start_date=start,
        current_day_offset=None if start is None else (today - start).days - paused_days,
        paused_since=paused_since,
        paused_days=paused_days,
        unlocked=False,
    )


def _paused(
    pauses: Sequence[Pause], today: date, max_pause_days: int | None
) -> tuple[int, date | None]:
    """The run's paused days until ``today``, and the day the pause under way began."""
    used = _resumed_days(pauses)
    under_way = next((p for p in pauses if p.resumed_on is None), None)
    if under_way is None:
        return used, None
    elapsed = (today - under_way.paused_on).days
    return used + counted_days(elapsed, used, max_pause_days), under_way.paused_on


def require_day_open(plan: Schedule, day_offset: int) -> None:
    """A locked day's items can be neither completed nor unmarked."""
    if plan.locked(day_offset):
        raise Conflict(f"Day {day_offset} is not open yet", code="DAY_LOCKED")


# --- what a pause, a resume and an unlock decide -----------------------------------------------


def decide_pause(
    course: CourseDetails,
    enrollment: Enrollment,
    pauses: Sequence[Pause],
    today: date,
    now: datetime,
    by: str,
) -> Pause:
    """The pause to record; refused (409) when already paused, not started, complete, or over
    the course's limits for the run."""
    run = enrollment.restart_count
    mine = run_pauses(pauses, run)
    if any(p.resumed_on is None for p in mine):
        raise Conflict("This course is already paused", code="ALREADY_PAUSED")
    if enrollment.start_date is None:
        raise Conflict("This course has not been started", code="NOT_STARTED")
    if enrollment.completed_at is not None:
        raise Conflict("This course is complete", code="COURSE_COMPLETED")
    if course.max_pauses is not None and len(mine) >= course.max_pauses:
        raise Conflict(
            f"This course allows {course.max_pauses} pauses per run", code="PAUSE_LIMIT_REACHED"
        )
    if course.max_pause_days is not None and _resumed_days(mine) >= course.max_pause_days:
        raise Conflict(
            f"This course allows {course.max_pause_days} paused days per run",
            code="PAUSE_DAYS_EXHAUSTED",
        )
    return Pause(run=run, paused_on=today, paused_at=now, paused_by=by)


def decide_resume(
    course: CourseDetails,
    enrollment: Enrollment,
    pauses: Sequence[Pause],
    today: date,
    now: datetime,
    by: str,
) -> Pause:
    """The pause under way, closed today; 409 ``NOT_PAUSED`` when there is none."""
    mine = run_pauses(pauses, enrollment.restart_count)
    under_way = next((p for p in mine if p.resumed_on is None), None)
    if under_way is None:
        raise Conflict("This course is not paused", code="NOT_PAUSED")
    # A resume "before" the pause (the buyer's zone moved west) counts no day.
    resumed_on = max(today, under_way.paused_on)
    days = counted_days(
        (resumed_on - under_way.paused_on).days, _resumed_days(mine), course.max_pause_days
    )
    return msgspec.structs.replace(
        under_way, resumed_on=resumed_on, resumed_at=now, resumed_by=by, days=days
    )


def close_on_restart(pauses: Sequence[Pause], run: int, today: date, now: datetime) -> Pause | None:
    """A restart ends the pause under way (a new run starts unpaused); the finished run's
    pauses stay in the history and the new run's limits start from zero."""
    under_way = open_pause(pauses, run)
    if under_way is None:
        return None
    resumed_on = max(today, under_way.paused_on)
    return msgspec.structs.replace(
        under_way,
        resumed_on=resumed_on,
        resumed_at=now,
        resumed_by=under_way.paused_by,
        days=(resumed_on - under_way.paused_on).days,
    )


def decide_unlock(enrollment: Enrollment, by: str, reason: str, now: datetime) -> Enrollment:
    """Staff open every day for this buyer; unlocking again records the latest who/when/why
    (each unlock is one event, so one version)."""
    return msgspec.structs.replace(
        enrollment,
        unlocked_at=now,
        unlocked_by=by,
        unlock_reason=reason,
        version=enrollment.version + 1,
    )


def day_offset_on(
    start: date, pauses: Sequence[Pause], max_pause_days: int | None, on: date
) -> int:
    """The run's ``currentDayOffset`` as it was on the calendar day ``on`` (``pauses``: the
    run's): a pause resumed later was under way then, one begun later did not count yet."""
    then = [
        p
        if p.resumed_on is not None and p.resumed_on <= on
        else msgspec.structs.replace(p, resumed_on=None, days=None)
        for p in pauses
        if p.paused_on <= on
    ]
    paused_days, _ = _paused(then, on, max_pause_days)
    return (on - start).days - paused_days
