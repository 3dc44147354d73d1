"""Pause, resume, unlock and the locked days as use cases on in-memory ports (unit: no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

from coursemesh.chassis.errors import DomainError
from coursemesh.learning.app import pauses, player
from coursemesh.learning.domain.model import Clock

from .fakes import COURSE, ORG, WORKOUT_A, FakeStorage, State, add_course, entitle

BUYER = "user_buyer"
TRAINER = "user_trainer"
BERLIN = ZoneInfo("Europe/Berlin")


def _at(day: int, hour: int = 10) -> Clock:
    return Clock(now=datetime(2025, 3, day, hour, tzinfo=UTC), zone=BERLIN)


@pytest.fixture
def state() -> State:
    state = State()
    add_course(state)
    course = state.courses[COURSE]
    details = msgspec.structs.replace(course.details, release_mode="daily", max_pauses=2)
    state.courses[COURSE] = msgspec.structs.replace(course, details=details)
    state.staff.add((ORG, TRAINER))
    return state


async def test_pause_then_resume_shifts_the_days_and_publishes_both(state: State) -> None:
    storage = FakeStorage(state)
    entitle(state, BUYER)
    await player.start(storage, BUYER, COURSE, date(2025, 3, 1), _at(1))

    paused = await pauses.pause(storage, BUYER, COURSE, _at(2))
    assert paused.schedule.paused_since == date(2025, 3, 2)
    view = await player.open_course(storage, BUYER, COURSE, _at(5))
    assert view.pauses[0].paused_by == BUYER
    resumed = await pauses.resume(storage, BUYER, COURSE, _at(5))

    assert resumed.schedule.paused_days == 3
    assert resumed.schedule.current_day_offset == 1  # 4 days since the start, 3 paused
    published = [(e.type, e.aggregate_version) for e in storage.published]
    assert published[-2:] == [
        ("learning.enrollment.paused.v1", 2),
        ("learning.enrollment.resumed.v1", 3),
    ]
    assert storage.published[-1].payload.total_paused_days == 3


async def test_a_locked_day_cannot_be_completed_and_nothing_changes(state: State) -> None:
    storage = FakeStorage(state)
    entitlement = entitle(state, BUYER)
    await player.start(storage, BUYER, COURSE, date(2025, 3, 1), _at(1))
    published = len(storage.published)

    with pytest.raises(DomainError) as refused:
        await player.mark_complete(storage, BUYER, COURSE, WORKOUT_A, 2, _at(2))

    assert refused.value.code == "DAY_LOCKED"
    assert state.completions.get(entitlement.entitlement_id, {}) == {}
    assert len(storage.published) == published
    # Day 0 is open.
    await player.mark_complete(storage, BUYER, COURSE, WORKOUT_A, 0, _at(2))


async def test_staff_unlock_opens_every_day_for_that_buyer(state: State) -> None:
    storage = FakeStorage(state)
    entitlement = entitle(state, BUYER)
    await player.start(storage, BUYER, COURSE, date(2025, 3, 1), _at(1))

    done = await pauses.unlock(
        storage, TRAINER, ORG, COURSE, entitlement.entitlement_id, "travelling", _at(1)
    )

    assert done.enrollment.unlocked_by == TRAINER
    assert done.schedule.first_locked(3) == 3
    await player.mark_complete(storage, BUYER, COURSE, WORKOUT_A, 2, _at(1))


async def test_staff_of_another_organization_cannot_pause(state: State) -> None:
    storage = FakeStorage(state)
    entitlement = entitle(state, BUYER)
    await player.start(storage, BUYER, COURSE, date(2025, 3, 1), _at(1))

    with pytest.raises(DomainError) as refused:
        await pauses.staff_pause(
            storage, "user_stranger", ORG, COURSE, entitlement.entitlement_id, _at(2)
        )

    assert refused.value.code == "COURSE_NOT_FOUND"
    assert state.pauses == {}


async def test_restart_ends_the_pause_and_the_limits_start_again(state: State) -> None:
    storage = FakeStorage(state)
    entitlement = entitle(state, BUYER)
    await player.start(storage, BUYER, COURSE, date(2025, 3, 1), _at(1))
    for day in (2, 4):
        await pauses.pause(storage, BUYER, COURSE, _at(day))
        await pauses.resume(storage, BUYER, COURSE, _at(day + 1))
    with pytest.raises(DomainError) as refused:
        await pauses.pause(storage, BUYER, COURSE, _at(6))
    assert refused.value.code == "PAUSE_LIMIT_REACHED"

    await player.restart(storage, BUYER, COURSE, _at(7))
    again = await pauses.pause(storage, BUYER, COURSE, _at(8))

    assert again.schedule.paused
    history = state.pauses[entitlement.entitlement_id]
    assert [(p.run, p.resumed_on is None) for p in history] == [(0, False), (0, False), (1, True)]
