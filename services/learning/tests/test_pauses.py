"""Drip release, pause/resume and the staff unlock through the routes, on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity
from coursemesh.contracts.catalog import CourseDetailsChanged

from .conftest import BUYER, COURSE, ORG, OTHER_BUYER, TRAINER, WORKOUT_A, World

ME = f"/me/courses/{COURSE}"
STAFF = f"/organizations/{ORG}/courses/{COURSE}/enrollments"


async def daily_course(
    world: World, max_pauses: int | None = None, max_pause_days: int | None = None
) -> None:
    """The three-day course (day 0: A, B; day 1: rest; day 2: A) released daily."""
    await world.course()
    world.course_version += 1
    await world.event(
        CourseDetailsChanged(
            course_id=COURSE,
            organization_id=ORG,
            name="30-day reset",
            description=None,
            image_url=None,
            duration_days=3,
            preview_type="first_day",
            status="published",
            release_mode="daily",
            max_pauses=max_pauses,
            max_pause_days=max_pause_days,
        ),
        COURSE,
        world.course_version,
    )


async def started(client: Any, world: World, identity: TestIdentity, **limits: Any) -> Any:
    await daily_course(world, **limits)
    await world.member(TRAINER, "trainer")
    await world.entitle()
    headers = identity.headers(BUYER)
    response = await client.post(f"{ME}/start", json={"startDate": "2025-03-03"}, headers=headers)
    assert response.status_code == 200
    return headers


def _codes(response: Any) -> tuple[int, str]:
    return response.status_code, response.json().get("code")


async def test_daily_release_locks_later_days_and_shows_when_they_open(
    client: Any, world: World, identity: TestIdentity
) -> None:
    headers = await started(client, world, identity)

    body = (await client.get(ME, headers=headers)).json()

    assert body["releaseMode"] == "daily"
    assert body["currentDayOffset"] == 0
    assert [(d["locked"], d["opensOn"]) for d in body["days"]] == [
        (False, None),
        (True, "2025-03-04"),
        (True, "2025-03-05"),
    ]
    assert body["days"][2]["items"] == []  # a locked day hides its workouts
    assert body["progress"]["total"] == 3


async def test_completing_or_unmarking_a_locked_day_is_refused_and_changes_nothing(
    client: Any, world: World, identity: TestIdentity, db: Database
) -> None:
    headers = await started(client, world, identity)
    url = f"{ME}/workouts/{WORKOUT_A}/complete"

    mark = await client.post(url, json={"dayOffset": 2}, headers=headers)
    unmark = await client.delete(url, params={"dayOffset": 2}, headers=headers)

    assert _codes(mark) == (409, "DAY_LOCKED")
    assert _codes(unmark) == (409, "DAY_LOCKED")
    async with db.reading() as conn:
        assert await conn.fetchval("SELECT count(*) FROM completions") == 0
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE type LIKE 'learning.w%'") == 0
    assert (await client.post(url, json={"dayOffset": 0}, headers=headers)).status_code == 200


async def test_a_workout_shows_only_its_open_days_and_none_before_its_first_opens(
    client: Any, world: World, identity: TestIdentity
) -> None:
    headers = await started(client, world, identity)
    url = f"{ME}/workouts/{WORKOUT_A}"

    today = await client.get(url, headers=headers)
    later = await client.post(f"{ME}/start", json={"startDate": "2025-03-05"}, headers=headers)
    before_start = await client.get(url, headers=headers)

    assert today.status_code == 200
    assert [o["dayOffset"] for o in today.json()["occurrences"]] == [0]  # day 2 is locked
    assert later.status_code == 200
    assert _codes(before_start) == (409, "DAY_LOCKED")
    assert "instructions" not in before_start.json()  # nothing of the workout leaks


async def test_pause_and_resume_shift_the_schedule_by_whole_days(
    client: Any, world: World, identity: TestIdentity, clock: Any, db: Database
) -> None:
    headers = await started(client, world, identity)
    clock.now = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)  # day 1 in Berlin

    paused = await client.post(f"{ME}/pause", params={"tz": "Europe/Berlin"}, headers=headers)
    assert paused.status_code == 200
    assert (paused.json()["paused"], paused.json()["pausedSince"]) == (True, "2025-03-04")
    clock.now = datetime(2025, 3, 6, 23, 30, tzinfo=UTC)  # 03-07 00:30 in Berlin
    during = (await client.get(ME, params={"tz": "Europe/Berlin"}, headers=headers)).json()
    assert (during["currentDayOffset"], during["paused"]) == (1, True)
    assert during["days"][2]["locked"] is True
    assert during["days"][2]["opensOn"] is None  # nothing is due while paused
    resumed = await client.post(f"{ME}/resume", params={"tz": "Europe/Berlin"}, headers=headers)
    body = (await client.get(ME, params={"tz": "Europe/Berlin"}, headers=headers)).json()

    assert resumed.status_code == 200
    assert resumed.json()["pausedDays"] == 3  # 03-04 to 03-07
    assert (body["currentDayOffset"], body["paused"], body["pausedDays"]) == (1, False, 3)
    assert body["days"][2]["opensOn"] == "2025-03-08"  # 03-03 + 2 + 3
    assert [(p["pausedOn"], p["resumedOn"], p["pausedBy"]) for p in body["pauses"]] == [
        ("2025-03-04", "2025-03-07", BUYER)
    ]
    library = await client.get("/me/courses", params={"tz": "Europe/Berlin"}, headers=headers)
    assert library.json()["courses"][0]["currentDayOffset"] == 1  # the library agrees
    async with db.reading() as conn:
        types = await conn.fetch("SELECT type FROM outbox WHERE type LIKE 'learning.enrollment%'")
    assert [r["type"] for r in types] == [
        "learning.enrollment.paused.v1",
        "learning.enrollment.resumed.v1",
    ]


async def test_pause_refusals(client: Any, world: World, identity: TestIdentity) -> None:
    await daily_course(world, max_pauses=1)
    await world.entitle()
    headers = identity.headers(BUYER)
    assert _codes(await client.post(f"{ME}/pause", headers=headers)) == (409, "NOT_STARTED")
    assert _codes(await client.post(f"{ME}/resume", headers=headers)) == (409, "NOT_PAUSED")
    await client.post(f"{ME}/start", headers=headers)
    assert (await client.post(f"{ME}/pause", headers=headers)).status_code == 200
    assert _codes(await client.post(f"{ME}/pause", headers=headers)) == (409, "ALREADY_PAUSED")
    assert (await client.post(f"{ME}/resume", headers=headers)).status_code == 200
    limit = await client.post(f"{ME}/pause", headers=headers)
    assert _codes(limit) == (409, "PAUSE_LIMIT_REACHED")


async def test_pause_days_limit_is_refused(
    client: Any, world: World, identity: TestIdentity, clock: Any
) -> None:
    headers = await started(client, world, identity, max_pause_days=1)
    await client.post(f"{ME}/pause", headers=headers)
    clock.now = datetime(2025, 3, 5, 10, 0, tzinfo=UTC)
    assert (await client.post(f"{ME}/resume", headers=headers)).json()["pausedDays"] == 1

    assert _codes(await client.post(f"{ME}/pause", headers=headers)) == (
        409,
        "PAUSE_DAYS_EXHAUSTED",
    )


async def test_a_completed_course_cannot_be_paused(
    client: Any, world: World, identity: TestIdentity, db: Database
) -> None:
    headers = await started(client, world, identity)
    async with db.unit_of_work() as uow:
        await uow.session.execute(sa.text("UPDATE enrollments SET completed_at = now()"))

    assert _codes(await client.post(f"{ME}/pause", headers=headers)) == (409, "COURSE_COMPLETED")


async def test_another_buyer_and_no_token_are_refused(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await started(client, world, identity)
    other = identity.headers(OTHER_BUYER)

    assert _codes(await client.post(f"{ME}/pause", headers=other)) == (404, "COURSE_NOT_OWNED")
    assert (await client.post(f"{ME}/resume")).status_code == 401
    assert (await client.post(f"{STAFF}/{COURSE}/pause")).status_code == 401


async def test_staff_pause_resume_and_unlock_show_in_the_drill_down(
    client: Any, world: World, identity: TestIdentity, clock: Any, db: Database
) -> None:
    headers = await started(client, world, identity)
    trainer = identity.headers(TRAINER)
    entitlement = world.entitlement_ids[f"{BUYER}:{COURSE}"]
    one = f"{STAFF}/{entitlement}"

    assert (await client.post(f"{one}/pause", headers=trainer)).status_code == 200
    clock.now = datetime(2025, 3, 5, 10, 0, tzinfo=UTC)
    assert (await client.post(f"{one}/resume", headers=trainer)).status_code == 200
    unlocked = await client.post(f"{one}/unlock", json={"reason": "travelling"}, headers=trainer)
    page = (await client.get(STAFF, headers=trainer)).json()
    player = (await client.get(ME, headers=headers)).json()

    again = await client.post(f"{one}/unlock", json={"reason": "injury"}, headers=trainer)
    assert (unlocked.status_code, again.status_code) == (200, 200)
    async with db.reading() as conn:
        audit = await conn.fetch(
            "SELECT convert_from(body, 'UTF8')::jsonb -> 'payload' AS p FROM outbox"
            " WHERE type = 'learning.enrollment.unlocked.v1' ORDER BY aggregate_version"
        )
    unlocks = [r["p"] for r in audit]
    # every unlock on record; the enrollment row keeps the latest
    assert [(u["reason"], u["unlocked_by"]) for u in unlocks] == [
        ("travelling", TRAINER),
        ("injury", TRAINER),
    ]
    page = (await client.get(STAFF, headers=trainer)).json()
    row = page["items"][0]
    assert (row["unlockedBy"], row["unlockReason"]) == (TRAINER, "injury")
    assert row["unlockedAt"] == "2025-03-05T10:00:00Z"
    assert [(p["pausedBy"], p["resumedBy"], p["days"]) for p in row["pauses"]] == [
        (TRAINER, TRAINER, 2)
    ]
    assert row["currentDayOffset"] == 0  # two days since the start, both paused
    assert player["unlocked"] is True
    assert [d["locked"] for d in player["days"]] == [False, False, False]
    workout = (await client.get(f"{ME}/workouts/{WORKOUT_A}", headers=headers)).json()
    assert [o["dayOffset"] for o in workout["occurrences"]] == [0, 2]
    done = await client.post(
        f"{ME}/workouts/{WORKOUT_A}/complete", json={"dayOffset": 2}, headers=headers
    )
    assert done.status_code == 200


async def test_staff_refusals(client: Any, world: World, identity: TestIdentity) -> None:
    await started(client, world, identity)
    entitlement = world.entitlement_ids[f"{BUYER}:{COURSE}"]
    one = f"{STAFF}/{entitlement}"
    await world.member("user_stranger", None)
    other_org = f"/organizations/{COURSE}/courses/{COURSE}/enrollments/{entitlement}"

    stranger = await client.post(f"{one}/pause", headers=identity.headers("user_stranger"))
    buyer = await client.post(
        f"{one}/unlock", json={"reason": "x"}, headers=identity.headers(BUYER)
    )
    wrong_org = await client.post(f"{other_org}/pause", headers=identity.headers(TRAINER))
    unknown = await client.post(f"{STAFF}/{COURSE}/pause", headers=identity.headers(TRAINER))
    no_reason = await client.post(f"{one}/unlock", json={}, headers=identity.headers(TRAINER))
    empty = await client.post(
        f"{one}/unlock", json={"reason": ""}, headers=identity.headers(TRAINER)
    )

    assert _codes(stranger) == (404, "COURSE_NOT_FOUND")
    assert _codes(buyer) == (404, "COURSE_NOT_FOUND")
    assert _codes(wrong_org) == (404, "COURSE_NOT_FOUND")
    assert _codes(unknown) == (404, "ENROLLMENT_NOT_FOUND")
    assert no_reason.status_code == 400
    assert empty.status_code == 400


async def test_restart_ends_a_pause_and_keeps_it_in_the_history(
    client: Any, world: World, identity: TestIdentity, clock: Any
) -> None:
    headers = await started(client, world, identity)
    await client.post(f"{ME}/pause", headers=headers)
    clock.now = datetime(2025, 3, 5, 10, 0, tzinfo=UTC)

    await client.post(f"{ME}/restart", headers=headers)
    body = (await client.get(ME, headers=headers)).json()

    assert (body["paused"], body["currentDayOffset"], body["pausedDays"]) == (False, 0, 0)
    assert [(p["run"], p["resumedOn"]) for p in body["pauses"]] == [(0, "2025-03-05")]
    assert (await client.post(f"{ME}/pause", headers=headers)).status_code == 200
