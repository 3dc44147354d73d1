"""The player's use cases on in-memory ports (unit: no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from coursemesh.chassis.errors import DomainError
from coursemesh.learning.app import player
from coursemesh.learning.domain.model import Clock, Day, Item

from .fakes import (
    COURSE,
    ITEM_A0,
    ITEM_A2,
    ITEM_B0,
    ORG,
    WORKOUT_A,
    WORKOUT_B,
    FakeStorage,
    State,
    add_course,
    entitle,
    snapshot_of,
)

BUYER = "user_buyer"
# Monday 2025-03-03 10:00 UTC: still Sunday in Los Angeles.
NOW = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
UTC_CLOCK = Clock(now=NOW, zone=ZoneInfo("UTC"))


@pytest.fixture
def state() -> State:
    state = State()
    add_course(state)
    return state


@pytest.fixture
def storage(state: State) -> FakeStorage:
    return FakeStorage(state)


def _types(storage: FakeStorage) -> list[tuple[str, int]]:
    return [(e.type, e.aggregate_version) for e in storage.published]


async def test_start_stamps_today_in_the_buyers_zone_and_publishes_started(
    state: State, storage: FakeStorage
) -> None:
    entitlement = entitle(state, BUYER)
    tokyo = Clock(now=datetime(2025, 3, 3, 23, 30, tzinfo=UTC), zone=ZoneInfo("Asia/Tokyo"))

    enrollment = await player.start(storage, BUYER, COURSE, None, tokyo)

    assert (enrollment.start_date, enrollment.version, enrollment.completed_at) == (
        date(2025, 3, 4),
        1,
        None,
    )
    assert _types(storage) == [("learning.course.started.v1", 1)]
    started = storage.published[0]
    assert started.aggregate_id == str(entitlement.entitlement_id)
    assert started.payload.start_date == date(2025, 3, 4)  # type: ignore[attr-defined]


async def test_start_out_of_range_is_refused_and_changes_nothing(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    before = snapshot_of(state)
    for day in (date(2031, 1, 1), date(1999, 1, 1)):
        with pytest.raises(DomainError) as caught:
            await player.start(storage, BUYER, COURSE, day, UTC_CLOCK)
        assert (caught.value.status, caught.value.code) == (422, "START_DATE_OUT_OF_RANGE")
    assert snapshot_of(state) == before
    assert storage.published == []


async def test_day_n_of_the_player_follows_the_start_date_and_the_zone(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    await player.start(storage, BUYER, COURSE, date(2025, 3, 1), UTC_CLOCK)
    evening = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)

    utc = await player.open_course(storage, BUYER, COURSE, Clock(now=evening, zone=ZoneInfo("UTC")))
    la = await player.open_course(
        storage, BUYER, COURSE, Clock(now=evening, zone=ZoneInfo("America/Los_Angeles"))
    )

    assert (utc.today, la.today) == (date(2025, 3, 3), date(2025, 3, 2))
    assert utc.enrollment is not None
    assert utc.enrollment.start_date == date(2025, 3, 1)
    assert utc.length == 3
    assert [d.day_offset for d in utc.curriculum.days] == [0, 1, 2]


async def test_an_owned_course_without_content_opens_empty(storage: FakeStorage) -> None:
    state = storage.state
    del state.courses[COURSE]
    entitle(state, BUYER)
    view = await player.open_course(storage, BUYER, COURSE, UTC_CLOCK)
    assert (view.course.course_id, view.course.organization_id) == (COURSE, ORG)
    assert (view.course.name, view.length, view.curriculum.days) == (None, 0, [])
    # The writes see the same empty course: nothing in it to complete.
    with pytest.raises(DomainError) as caught:
        await player.mark_complete(storage, BUYER, COURSE, WORKOUT_A, None, UTC_CLOCK)
    assert caught.value.code == "WORKOUT_NOT_IN_COURSE"


@pytest.mark.parametrize(
    ("status", "revoked", "code"),
    [
        ("pending", None, "ENTITLEMENT_PENDING"),
        ("revoked", NOW, "ENTITLEMENT_REVOKED"),
        ("active", NOW, "ENTITLEMENT_REVOKED"),
    ],
)
async def test_only_an_active_entitlement_opens_the_player(
    state: State, storage: FakeStorage, status: str, revoked: datetime | None, code: str
) -> None:
    entitle(state, BUYER, status=status, revoked_at=revoked)
    with pytest.raises(DomainError) as caught:
        await player.open_course(storage, BUYER, COURSE, UTC_CLOCK)
    assert (caught.value.status, caught.value.code) == (403, code)
    with pytest.raises(DomainError) as caught:
        await player.mark_complete(storage, BUYER, COURSE, WORKOUT_A, None, UTC_CLOCK)
    assert (caught.value.status, caught.value.code) == (403, code)


async def test_another_buyers_course_is_not_owned(state: State, storage: FakeStorage) -> None:
    entitle(state, "user_other")
    before = snapshot_of(state)
    calls = [
        player.open_course(storage, BUYER, COURSE, UTC_CLOCK),
        player.start(storage, BUYER, COURSE, None, UTC_CLOCK),
        player.restart(storage, BUYER, COURSE, UTC_CLOCK),
        player.read_workout(storage, BUYER, COURSE, WORKOUT_A, UTC_CLOCK),
        player.mark_complete(storage, BUYER, COURSE, WORKOUT_A, None, UTC_CLOCK),
        player.unmark_complete(storage, BUYER, COURSE, WORKOUT_A, None, UTC_CLOCK),
    ]
    for call in calls:
        with pytest.raises(DomainError) as caught:
            await call
        assert (caught.value.status, caught.value.code) == (404, "COURSE_NOT_OWNED")
    assert snapshot_of(state) == before
    assert storage.published == []


async def test_complete_marks_the_earliest_open_occurrence_and_completes_the_course(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)

    first = await player.mark_complete(storage, BUYER, COURSE, WORKOUT_A, None, UTC_CLOCK)
    await player.mark_complete(storage, BUYER, COURSE, WORKOUT_B, None, UTC_CLOCK)
    last = await player.mark_complete(storage, BUYER, COURSE, WORKOUT_A, None, UTC_CLOCK)

    assert first.occurrence is not None
    assert first.occurrence.item_id == ITEM_A0
    assert last.occurrence is not None
    assert last.occurrence.item_id == ITEM_A2
    assert (last.changed, last.total_items, last.completed_item_ids) == (
        True,
        3,
        {ITEM_A0, ITEM_B0, ITEM_A2},
    )
    assert last.enrollment.completed_at == NOW
    assert _types(storage) == [
        ("learning.workout.completed.v1", 1),
        ("learning.workout.completed.v1", 2),
        ("learning.workout.completed.v1", 3),
        ("learning.course.completed.v1", 4),
    ]


async def test_a_repeated_completion_changes_nothing_and_publishes_nothing(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    await player.mark_complete(storage, BUYER, COURSE, WORKOUT_B, None, UTC_CLOCK)
    repeat = await player.mark_complete(storage, BUYER, COURSE, WORKOUT_B, None, UTC_CLOCK)
    assert (repeat.changed, repeat.completed_item_ids) == (False, {ITEM_B0})
    assert repeat.enrollment.version == 1
    assert _types(storage) == [("learning.workout.completed.v1", 1)]


@pytest.mark.parametrize(
    ("workout", "day", "code"),
    [
        (ITEM_A0, None, "WORKOUT_NOT_IN_COURSE"),  # an id that is no workout of the course
        (WORKOUT_A, 1, "REST_DAY"),
        (WORKOUT_B, 2, "WORKOUT_NOT_ON_DAY"),
    ],
)
async def test_a_completion_aimed_at_nothing_is_404_and_changes_nothing(
    state: State, storage: FakeStorage, workout: object, day: int | None, code: str
) -> None:
    entitle(state, BUYER)
    before = snapshot_of(state)
    with pytest.raises(DomainError) as caught:
        await player.mark_complete(storage, BUYER, COURSE, workout, day, UTC_CLOCK)  # type: ignore[arg-type]
    assert (caught.value.status, caught.value.code) == (404, code)
    assert snapshot_of(state) == before
    assert storage.published == []


async def test_unmark_picks_the_latest_completed_occurrence_and_clears_completed_at(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    for workout in (WORKOUT_A, WORKOUT_B, WORKOUT_A):
        await player.mark_complete(storage, BUYER, COURSE, workout, None, UTC_CLOCK)
    later = Clock(now=datetime(2025, 3, 4, tzinfo=UTC), zone=ZoneInfo("UTC"))

    unmarked = await player.unmark_complete(storage, BUYER, COURSE, WORKOUT_A, None, later)

    assert unmarked.occurrence is not None
    assert unmarked.occurrence.item_id == ITEM_A2
    assert (unmarked.changed, unmarked.completed) == (True, False)
    assert unmarked.completed_item_ids == {ITEM_A0, ITEM_B0}
    assert unmarked.enrollment.completed_at is None
    assert unmarked.enrollment.last_activity_at == later.now
    assert unmarked.enrollment.version == 4  # an unmark publishes nothing
    assert len(storage.published) == 4

    on_day_0 = await player.unmark_complete(storage, BUYER, COURSE, WORKOUT_A, 0, later)
    assert on_day_0.completed_item_ids == {ITEM_B0}
    nothing = await player.unmark_complete(storage, BUYER, COURSE, WORKOUT_A, None, later)
    assert (nothing.occurrence, nothing.changed) == (None, False)


async def test_a_course_that_lost_its_open_items_completes_on_the_next_completion(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    await player.mark_complete(storage, BUYER, COURSE, WORKOUT_A, 0, UTC_CLOCK)
    # The curriculum changed: only day 0's A is left, already complete.
    only_a0 = [
        Day(
            day_offset=0,
            is_rest=False,
            items=[Item(item_id=ITEM_A0, workout_id=WORKOUT_A, position=0)],
        )
    ]
    add_course(state, only_a0)
    repeat = await player.mark_complete(storage, BUYER, COURSE, WORKOUT_A, None, UTC_CLOCK)
    assert (repeat.changed, repeat.enrollment.completed_at) == (False, NOW)
    assert _types(storage)[-1] == ("learning.course.completed.v1", 2)


async def test_restart_starts_a_new_run_today_and_keeps_the_old_one_in_history(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    await player.start(storage, BUYER, COURSE, date(2025, 2, 1), UTC_CLOCK)
    for workout in (WORKOUT_A, WORKOUT_B, WORKOUT_A):
        await player.mark_complete(storage, BUYER, COURSE, workout, None, UTC_CLOCK)
    later = Clock(now=datetime(2025, 3, 20, 8, 0, tzinfo=UTC), zone=ZoneInfo("UTC"))

    enrollment = await player.restart(storage, BUYER, COURSE, later)

    assert (enrollment.start_date, enrollment.completed_at, enrollment.restart_count) == (
        date(2025, 3, 20),
        None,
        1,
    )
    assert sorted((c.item_id, run, reason) for _, c, run, reason in state.history) == sorted(
        (item, 0, "restart") for item in (ITEM_A0, ITEM_B0, ITEM_A2)
    )
    view = await player.open_course(storage, BUYER, COURSE, later)
    assert view.completed_item_ids == []
    assert _types(storage)[-1] == ("learning.course.restarted.v1", 6)
    restarted = storage.published[-1].payload
    assert (restarted.restart_count, restarted.start_date) == (1, date(2025, 3, 20))  # type: ignore[attr-defined]


async def test_restarting_a_course_never_started_starts_it_as_run_one(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    enrollment = await player.restart(storage, BUYER, COURSE, UTC_CLOCK)
    assert (enrollment.start_date, enrollment.restart_count, enrollment.version) == (
        date(2025, 3, 3),
        1,
        1,
    )


async def test_read_workout_shows_its_occurrences_and_which_are_done(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    await player.mark_complete(storage, BUYER, COURSE, WORKOUT_A, 2, UTC_CLOCK)
    view = await player.read_workout(storage, BUYER, COURSE, WORKOUT_A, UTC_CLOCK)
    assert [(o.item_id, o.day_offset) for o in view.occurrences] == [(ITEM_A0, 0), (ITEM_A2, 2)]
    assert view.completed_item_ids == {ITEM_A2}
    assert view.workout is not None
    assert view.workout.title == "Mobility flow"


async def test_the_library_lists_active_entitlements_with_progress(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    entitle(state, BUYER, status="pending", course_id=ORG)  # any other course id
    await player.mark_complete(storage, BUYER, COURSE, WORKOUT_B, None, UTC_CLOCK)
    (entry,) = await player.library(storage, BUYER)
    assert (entry.course_name, entry.completed_items, entry.total_items) == ("30-day reset", 1, 3)
