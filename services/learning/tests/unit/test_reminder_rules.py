"""The pure rules of reminder e-mails, on a controllable clock: due instants across zones and
DST changes, missed workout days, which mails are owed, and the unsubscribe token."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from coursemesh.chassis.errors import BadRequest, Unprocessable
from coursemesh.learning.domain.model import Day, Enrollment, Item
from coursemesh.learning.domain.reminders import (
    ReminderSetting,
    due_instant,
    is_due,
    mails_due,
    missed_workout_days,
    parse_local_time,
    parse_zone,
    unsubscribe_token,
    verify_unsubscribe_token,
)

BERLIN = ZoneInfo("Europe/Berlin")
ENTITLEMENT = uuid.UUID("0195f0a0-0000-7000-8000-00000000e001")


def workout_day(offset: int) -> Day:
    return Day(
        day_offset=offset,
        is_rest=False,
        items=[Item(item_id=uuid.uuid4(), workout_id=uuid.uuid4(), position=0)],
    )


def rest_day(offset: int) -> Day:
    return Day(day_offset=offset, is_rest=True, items=[])


def setting(local_time: time = time(9, 0), zone: str = "Europe/Berlin") -> ReminderSetting:
    return ReminderSetting(
        entitlement_id=ENTITLEMENT,
        enabled=True,
        local_time=local_time,
        time_zone=zone,
        email="learner@example.com",
    )


def enrollment(start: date, completed_at: datetime | None = None) -> Enrollment:
    return Enrollment(
        entitlement_id=ENTITLEMENT,
        start_date=start,
        completed_at=completed_at,
        restart_count=0,
        last_activity_at=None,
        version=1,
    )


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["9:00", "24:00", "09:60", "09:00:00", "", " 09:00", "\uff109:00"])
def test_a_local_time_other_than_hh_mm_is_refused(text: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        parse_local_time(text)
    assert refused.value.code == "INVALID_LOCAL_TIME"


def test_hh_mm_is_a_local_time() -> None:
    assert parse_local_time("00:00") == time(0, 0)
    assert parse_local_time("23:59") == time(23, 59)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../../etc/passwd", "europe/berlin"])
def test_a_name_the_zone_database_does_not_list_is_refused(name: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        parse_zone(name)
    assert refused.value.code == "INVALID_TIME_ZONE"


# --- due instants -----------------------------------------------------------------------------


def test_nine_in_berlin_stays_nine_local_across_both_dst_changes() -> None:
    before_spring = due_instant(date(2025, 3, 29), time(9, 0), BERLIN)
    after_spring = due_instant(date(2025, 3, 30), time(9, 0), BERLIN)
    before_autumn = due_instant(date(2025, 10, 25), time(9, 0), BERLIN)
    after_autumn = due_instant(date(2025, 10, 26), time(9, 0), BERLIN)
    assert before_spring == datetime(2025, 3, 29, 8, 0, tzinfo=UTC)  # CET, UTC+1
    assert after_spring == datetime(2025, 3, 30, 7, 0, tzinfo=UTC)  # CEST, UTC+2
    assert before_autumn == datetime(2025, 10, 25, 7, 0, tzinfo=UTC)
    assert after_autumn == datetime(2025, 10, 26, 8, 0, tzinfo=UTC)
    for instant in (before_spring, after_spring, before_autumn, after_autumn):
        assert instant.astimezone(BERLIN).time() == time(9, 0)


def test_a_skipped_wall_time_is_sent_at_the_next_minute_that_exists() -> None:
    # 2025-03-30 in Berlin goes from 02:00 straight to 03:00
    assert due_instant(date(2025, 3, 30), time(2, 30), BERLIN) == datetime(
        2025, 3, 30, 1, 0, tzinfo=UTC
    )
    assert due_instant(date(2025, 3, 30), time(2, 30), BERLIN).astimezone(BERLIN).time() == time(
        3, 0
    )


def test_a_repeated_wall_time_is_sent_at_its_first_occurrence() -> None:
    # 2025-10-26 in Berlin goes through 02:30 twice: first in CEST (00:30 UTC)
    assert due_instant(date(2025, 10, 26), time(2, 30), BERLIN) == datetime(
        2025, 10, 26, 0, 30, tzinfo=UTC
    )


def test_the_same_instant_is_due_in_one_zone_and_not_yet_in_another() -> None:
    now = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)  # 11:00 in Berlin, 02:00 in Los Angeles
    assert is_due(now, time(9, 0), BERLIN)
    assert not is_due(now, time(9, 0), ZoneInfo("America/Los_Angeles"))
    # Tokyo: 19:00 local, the reminder of 09:00 came due that local morning
    assert is_due(now, time(9, 0), ZoneInfo("Asia/Tokyo"))


# --- missed days ------------------------------------------------------------------------------


def test_missed_days_count_workout_days_back_to_the_last_completion_skipping_rest() -> None:
    days = [
        workout_day(0),
        workout_day(1),
        rest_day(2),
        workout_day(3),
        workout_day(4),
        workout_day(5),
    ]
    assert missed_workout_days(days, 5, {0}) == 3  # days 1, 3 and 4; day 2 is rest
    assert missed_workout_days(days, 5, {3}) == 1  # day 4 only
    assert missed_workout_days(days, 5, {4}) == 0
    assert missed_workout_days(days, 0, set()) == 0  # nothing was due before the first day
    assert missed_workout_days(days, 9, set()) == 5  # past the end: every workout day missed


# --- what is owed -----------------------------------------------------------------------------


def owed(
    now: datetime,
    enrolled: Enrollment | None,
    days: list[Day],
    done: frozenset[int] = frozenset(),
    nudge_after: int = 3,
) -> list[tuple[str, date]]:
    return [
        (m.kind, m.local_date)
        for m in mails_due(
            now=now,
            setting=setting(),
            enrollment=enrolled,
            days=days,
            completed_days=set(done),
            nudge_after=nudge_after,
        )
    ]


def test_a_workout_day_is_owed_its_reminder_from_the_local_time_on() -> None:
    days = [workout_day(0), rest_day(1), workout_day(2)]
    start = date(2025, 3, 3)
    assert owed(datetime(2025, 3, 3, 7, 59, tzinfo=UTC), enrollment(start), days) == []
    assert owed(datetime(2025, 3, 3, 8, 0, tzinfo=UTC), enrollment(start), days) == [
        ("daily", date(2025, 3, 3))
    ]


def test_a_rest_day_a_course_not_started_or_over_sends_nothing() -> None:
    days = [workout_day(0), rest_day(1), workout_day(2)]
    start = date(2025, 3, 3)
    assert owed(datetime(2025, 3, 4, 12, 0, tzinfo=UTC), enrollment(start), days) == []  # rest
    assert owed(datetime(2025, 3, 2, 12, 0, tzinfo=UTC), enrollment(start), days) == []  # before
    assert owed(datetime(2025, 3, 6, 12, 0, tzinfo=UTC), enrollment(start), days) == []  # over
    assert owed(datetime(2025, 3, 3, 12, 0, tzinfo=UTC), None, days) == []  # never opened


def test_the_nudge_comes_on_the_day_the_missed_days_reach_n() -> None:
    days = [workout_day(n) for n in range(6)]
    start = date(2025, 3, 3)
    day = lambda n: datetime(2025, 3, 3, 12, 0, tzinfo=UTC) + timedelta(days=n)  # noqa: E731
    assert ("nudge", date(2025, 3, 5)) not in owed(day(2), enrollment(start), days)  # 2 missed
    assert owed(day(3), enrollment(start), days) == [
        ("daily", date(2025, 3, 6)),
        ("nudge", date(2025, 3, 6)),
    ]
    assert owed(day(4), enrollment(start), days) == [("daily", date(2025, 3, 7))]  # once a lapse
    one_done = frozenset({1})
    assert owed(day(3), enrollment(start), days, done=one_done) == [("daily", date(2025, 3, 6))]
    assert owed(day(3), enrollment(start), days, nudge_after=0) == [("daily", date(2025, 3, 6))]


def test_a_completed_course_is_congratulated_once_on_its_local_day_and_nothing_else() -> None:
    days = [workout_day(0), workout_day(1)]
    completed_at = datetime(2025, 3, 4, 23, 30, tzinfo=UTC)  # 00:30 on the 5th in Berlin
    enrolled = enrollment(date(2025, 3, 3), completed_at)
    assert owed(datetime(2025, 3, 4, 23, 45, tzinfo=UTC), enrolled, days) == [
        ("completed", date(2025, 3, 5))
    ]
    # long after, it is news to nobody
    assert owed(completed_at + timedelta(days=3), enrolled, days) == []


# --- unsubscribe token ------------------------------------------------------------------------


def test_the_unsubscribe_token_names_its_entitlement_and_nothing_else_verifies() -> None:
    token = unsubscribe_token(ENTITLEMENT, "key-1")
    assert verify_unsubscribe_token(token, "key-1") == ENTITLEMENT
    other = unsubscribe_token(uuid.uuid4(), "key-1")
    forged = token.split(".")[0] + "." + other.split(".")[1]
    for bad in (forged, token + "x", "", "no-dot", "é.é", token.replace(".", "")):
        with pytest.raises(BadRequest) as refused:
            verify_unsubscribe_token(bad, "key-1")
        assert refused.value.code == "INVALID_UNSUBSCRIBE_TOKEN"
    with pytest.raises(BadRequest):
        verify_unsubscribe_token(token, "another-key")
