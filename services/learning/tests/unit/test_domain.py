"""Unit tests of the pure player rules (no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from coursemesh.chassis.errors import BadRequest, Forbidden, NotFound, Unprocessable
from coursemesh.learning.domain.model import Access, Day, Item
from coursemesh.learning.domain.player import (
    check_start_date,
    current_day_offset,
    dense_days,
    is_course_complete,
    occurrence_to_complete,
    occurrence_to_unmark,
    parse_time_zone,
    require_access,
    today_in,
)

A, B = uuid.uuid4(), uuid.uuid4()
A0, B0, A2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
DAYS = [
    Day(
        day_offset=0,
        is_rest=False,
        items=[
            Item(item_id=A0, workout_id=A, position=0),
            Item(item_id=B0, workout_id=B, position=1),
        ],
    ),
    Day(day_offset=1, is_rest=True, items=[]),
    Day(day_offset=2, is_rest=False, items=[Item(item_id=A2, workout_id=A, position=0)]),
]


def test_day_n_is_floor_of_days_since_start() -> None:
    assert current_day_offset(date(2025, 3, 1), date(2025, 3, 3)) == 2
    assert current_day_offset(date(2025, 3, 5), date(2025, 3, 3)) == -2
    assert current_day_offset(None, date(2025, 3, 3)) is None


def test_today_depends_on_the_buyers_time_zone() -> None:
    now = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
    assert today_in(parse_time_zone(None), now) == date(2025, 3, 3)
    assert today_in(parse_time_zone("America/Los_Angeles"), now) == date(2025, 3, 2)
    assert today_in(parse_time_zone("Asia/Tokyo"), now) == date(2025, 3, 3)


@pytest.mark.parametrize("name", ["Mars/Olympus", "../../etc/passwd", "not a zone"])
def test_unknown_time_zone_is_a_bad_request(name: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_time_zone(name)
    assert caught.value.code == "INVALID_TIME_ZONE"


def test_start_date_bound_is_a_year_either_way() -> None:
    today = date(2025, 3, 3)
    check_start_date(date(2026, 3, 3), today)
    check_start_date(date(2024, 3, 3), today)
    with pytest.raises(Unprocessable) as caught:
        check_start_date(date(2030, 1, 1), today)
    assert caught.value.code == "START_DATE_OUT_OF_RANGE"


@pytest.mark.parametrize(
    ("access", "error", "code"),
    [
        (None, NotFound, "COURSE_NOT_OWNED"),
        (Access(status="pending", access_revoked=False), Forbidden, "ENTITLEMENT_PENDING"),
        (Access(status="revoked", access_revoked=True), Forbidden, "ENTITLEMENT_REVOKED"),
        (Access(status="active", access_revoked=True), Forbidden, "ENTITLEMENT_REVOKED"),
    ],
)
def test_only_an_active_entitlement_opens_the_player(
    access: Access | None, error: type[Exception], code: str
) -> None:
    with pytest.raises(error) as caught:
        require_access(access)
    assert getattr(caught.value, "code", None) == code
    require_access(Access(status="active", access_revoked=False))


def test_dense_days_fill_the_days_nobody_set() -> None:
    days = dense_days(4, [DAYS[2]])
    assert [(d.day_offset, d.is_rest, len(d.items)) for d in days] == [
        (0, False, 0),
        (1, False, 0),
        (2, False, 1),
        (3, False, 0),
    ]


def test_several_days_workout_completes_earliest_open_occurrence_first() -> None:
    assert occurrence_to_complete(DAYS, A, set(), None).item_id == A0
    assert occurrence_to_complete(DAYS, A, {A0}, None).item_id == A2
    # every occurrence done: the repeat points at the earliest (an idempotent no-op)
    assert occurrence_to_complete(DAYS, A, {A0, A2}, None).item_id == A0
    assert occurrence_to_complete(DAYS, A, set(), 2).item_id == A2


def test_unmark_picks_the_latest_completed_occurrence() -> None:
    assert occurrence_to_unmark(DAYS, A, {A0, A2}, None).item_id == A2  # type: ignore[union-attr]
    assert occurrence_to_unmark(DAYS, A, {A0}, None).item_id == A0  # type: ignore[union-attr]
    assert occurrence_to_unmark(DAYS, A, set(), None) is None


@pytest.mark.parametrize(
    ("workout", "day", "code"),
    [
        (uuid.uuid4(), None, "WORKOUT_NOT_IN_COURSE"),
        (A, 1, "REST_DAY"),
        (B, 2, "WORKOUT_NOT_ON_DAY"),
    ],
)
def test_completion_target_must_exist(workout: uuid.UUID, day: int | None, code: str) -> None:
    with pytest.raises(NotFound) as caught:
        occurrence_to_complete(DAYS, workout, set(), day)
    assert caught.value.code == code


def test_course_complete_when_every_workout_item_is() -> None:
    assert not is_course_complete(DAYS, {A0, B0})
    assert is_course_complete(DAYS, {A0, B0, A2})
    assert not is_course_complete([Day(day_offset=0, is_rest=True, items=[])], set())
