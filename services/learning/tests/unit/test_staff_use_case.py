"""The staff drill-down on in-memory ports (unit: no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from coursemesh.chassis.errors import NotFound
from coursemesh.learning.app import player
from coursemesh.learning.app.staff import course_enrollments
from coursemesh.learning.domain.model import Clock

from .fakes import (
    COURSE,
    ORG,
    WORKOUT_A,
    WORKOUT_B,
    FakeStaffStorage,
    FakeStorage,
    State,
    add_course,
    entitle,
)

TRAINER = "user_trainer"
CLOCK = Clock(now=datetime(2025, 3, 3, 10, 0, tzinfo=UTC), zone=ZoneInfo("UTC"))


@pytest.fixture
async def state() -> State:
    """ann: 2 items done; bob: started; cat: never opened; dan: pending."""
    state = State()
    add_course(state)
    state.staff.add((ORG, TRAINER))
    for user in ("user_ann", "user_bob", "user_cat"):
        entitle(state, user)
    entitle(state, "user_dan", status="pending")
    storage = FakeStorage(state)
    await player.start(storage, "user_ann", COURSE, date(2025, 3, 1), CLOCK)
    for workout in (WORKOUT_A, WORKOUT_B):
        await player.mark_complete(storage, "user_ann", COURSE, workout, None, CLOCK)
    await player.start(storage, "user_bob", COURSE, None, CLOCK)
    return state


async def test_staff_see_every_active_buyer_with_progress(state: State) -> None:
    page = await course_enrollments(
        FakeStaffStorage(state),
        TRAINER,
        ORG,
        COURSE,
        sort="userId",
        descending=False,
        limit=2,
        offset=0,
        clock=CLOCK,
    )
    assert page.total == 3  # the pending buyer is not listed
    assert [(r.user_id, r.completed_items, r.total_items) for r in page.rows] == [
        ("user_ann", 2, 3),
        ("user_bob", 0, 3),
    ]
    rest = await course_enrollments(
        FakeStaffStorage(state),
        TRAINER,
        ORG,
        COURSE,
        sort="userId",
        descending=False,
        limit=None,
        offset=2,
        clock=CLOCK,
    )
    assert [r.user_id for r in rest.rows] == ["user_cat"]


@pytest.mark.parametrize(
    ("user", "organization"),
    [
        ("user_ann", ORG),  # a buyer, not staff
        ("user_stranger", ORG),
        (TRAINER, uuid.UUID(int=1)),  # staff, but the course is another organization's
    ],
)
async def test_anyone_but_the_owning_organizations_staff_gets_not_found(
    state: State, user: str, organization: uuid.UUID
) -> None:
    storage = FakeStaffStorage(state)
    with pytest.raises(NotFound) as caught:
        await course_enrollments(
            storage,
            user,
            organization,
            COURSE,
            sort="userId",
            descending=False,
            limit=50,
            offset=0,
            clock=CLOCK,
        )
    assert (caught.value.status, caught.value.code) == (404, "COURSE_NOT_FOUND")
    assert caught.value.detail == "No such course in this organization"


async def test_an_unknown_course_is_not_found_before_anyone_is_asked(state: State) -> None:
    storage = FakeStaffStorage(state)
    with pytest.raises(NotFound) as caught:
        await course_enrollments(
            storage,
            TRAINER,
            ORG,
            uuid.uuid4(),
            sort="userId",
            descending=False,
            limit=50,
            offset=0,
            clock=CLOCK,
        )
    assert caught.value.code == "COURSE_NOT_FOUND"
    assert storage.directory.asked == 0


async def test_figures_sort_the_buyers_with_the_missing_ones_last(state: State) -> None:
    """Today 03-03 (UTC). ann started 03-01 and did day 0's A and B today, late: 2 of the 3
    due items (days 0 and 2) = 66 %, no day kept. bob started today: day 0's 2 items due, none
    done = 0 %. cat never started: nothing due (null), last both ways."""

    async def users(sort: str, descending: bool, limit: int | None, offset: int) -> list[str]:
        page = await course_enrollments(
            FakeStaffStorage(state),
            TRAINER,
            ORG,
            COURSE,
            sort=sort,  # type: ignore[arg-type]
            descending=descending,
            limit=limit,
            offset=offset,
            clock=CLOCK,
        )
        assert page.total == 3
        return [b.row.user_id for b in page.buyers]

    assert await users("adherencePercent", True, None, 0) == ["user_ann", "user_bob", "user_cat"]
    assert await users("adherencePercent", False, None, 0) == ["user_bob", "user_ann", "user_cat"]
    assert await users("adherencePercent", False, 1, 1) == ["user_ann"]
    page = await course_enrollments(
        FakeStaffStorage(state),
        TRAINER,
        ORG,
        COURSE,
        sort="adherencePercent",
        descending=True,
        limit=1,
        offset=0,
        clock=CLOCK,
    )
    figures = page.buyers[0].adherence
    assert (figures.adherence_percent, figures.current_streak, figures.longest_streak) == (66, 0, 0)
