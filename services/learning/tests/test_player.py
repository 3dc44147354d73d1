"""The player flow and its edge cases over HTTP, on real Postgres."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from litestar import Litestar, get
from litestar.serialization import encode_json
from litestar.testing import AsyncTestClient

from coursemesh.chassis.db import Database
from coursemesh.chassis.errors import exception_handlers
from coursemesh.chassis.testing import TestIdentity, outbox_events
from coursemesh.contracts import examples
from coursemesh.contracts.types import CurriculumDay, CurriculumItem
from coursemesh.learning.adapters.storage import SqlPlayerStorage
from coursemesh.learning.adapters.tables import completion_history, completions, enrollments
from coursemesh.learning.app import player
from coursemesh.learning.app.courses import CourseReadModel
from coursemesh.learning.domain.model import Clock
from coursemesh.learning.domain.player import UTC_ZONE
from coursemesh.learning.http.clock import TimeZoneHeader, TimeZoneQuery
from coursemesh.learning.http.player_body import player_course

COURSE = str(examples.COURSE)
ORG = str(examples.ORG)
WORKOUT_A, WORKOUT_B = str(examples.WORKOUT_A), str(examples.WORKOUT_B)
ITEM_A0, ITEM_B0, ITEM_A2 = str(examples.ITEM_A0), str(examples.ITEM_B0), str(examples.ITEM_A2)
BUYER, OTHER = "user_buyer", "user_other"
PLAYER = f"/me/courses/{COURSE}"


async def player_state(db: Database) -> dict[str, Any]:
    """Everything a player call may change: compared before/after a refused call."""
    async with db.engine.connect() as conn:
        return {
            "enrollments": (await conn.execute(sa.select(enrollments))).all(),
            "completions": (await conn.execute(sa.select(completions))).all(),
            "history": (await conn.execute(sa.select(completion_history))).all(),
            "outbox": len(await outbox_events(db)),
        }


async def complete(client: Any, identity: TestIdentity, workout: str, **body: Any) -> Any:
    return await client.post(
        f"{PLAYER}/workouts/{workout}/complete",
        json=body or None,
        headers=identity.headers(BUYER),
    )


# --- library -----------------------------------------------------------------------------------


async def test_land_on_library_lists_active_entitlements_across_orgs(
    client: Any, world: Any, identity: TestIdentity
) -> None:
    other_course = examples.PLAN  # any uuid: a second course
    await world.course()
    await world.course(course_id=other_course, name="Another org's course")
    await world.entitle()
    await world.entitle(course_id=other_course)
    pending_course = examples.LEAD
    await world.entitle(course_id=pending_course, status="pending")
    await world.entitle(user_id=OTHER)
    await client.post(f"{PLAYER}/start", headers=identity.headers(BUYER))
    await complete(client, identity, WORKOUT_A)

    response = await client.get("/me/courses", headers=identity.headers(BUYER))

    assert response.status_code == 200
    listed = {c["courseId"]: c for c in response.json()["courses"]}
    assert set(listed) == {COURSE, str(other_course)}  # not the pending one, not OTHER's
    mine = listed[COURSE]
    assert mine["name"] == "30-day reset"
    assert mine["progress"] == {"completed": 1, "total": 3}
    assert mine["currentDayOffset"] == 0
    assert listed[str(other_course)]["currentDayOffset"] is None  # not started


async def test_library_without_token_is_401(client: Any) -> None:
    response = await client.get("/me/courses")
    assert response.status_code == 401
    assert response.json()["code"] == "MISSING_TOKEN"


# --- open a course -----------------------------------------------------------------------------


async def test_open_course_returns_dense_curriculum_and_completion_ids(
    client: Any, world: Any, identity: TestIdentity
) -> None:
    await world.course()
    entitlement_id = await world.entitle()
    await complete(client, identity, WORKOUT_A)

    response = await client.get(PLAYER, headers=identity.headers(BUYER))

    assert response.status_code == 200
    body = response.json()
    assert body["entitlement"]["id"] == str(entitlement_id)
    assert body["entitlement"]["status"] == "active"
    assert body["curriculumVersion"] == 1
    assert [(d["dayOffset"], d["isRest"]) for d in body["days"]] == [
        (0, False),
        (1, True),
        (2, False),
    ]
    day0 = body["days"][0]["items"]
    assert [(i["workoutId"], i["completed"]) for i in day0] == [
        (WORKOUT_A, True),
        (WORKOUT_B, False),
    ]
    assert day0[0]["workout"]["title"] == "Mobility flow"
    # library workout ids (a client flips cards by workout), plus the item ids for a workout
    # on several days
    assert body["completedCourseWorkoutIds"] == [WORKOUT_A]
    assert body["completedItemIds"] == [ITEM_A0]
    assert body["days"][2]["items"][0]["completed"] is False
    assert body["progress"] == {"completed": 1, "total": 3}


async def test_open_course_pending_payment_is_403_pending(
    client: Any, world: Any, identity: TestIdentity
) -> None:
    await world.course()
    await world.entitle(status="pending")
    response = await client.get(PLAYER, headers=identity.headers(BUYER))
    assert response.status_code == 403
    assert response.json()["code"] == "ENTITLEMENT_PENDING"


async def test_open_course_revoked_or_access_revoked_at_is_403_revoked(
    client: Any, world: Any, identity: TestIdentity
) -> None:
    await world.course()
    await world.entitle(status="revoked", revoked_at=datetime(2025, 3, 2, tzinfo=UTC))
    response = await client.get(PLAYER, headers=identity.headers(BUYER))
    assert response.status_code == 403
    assert response.json()["code"] == "ENTITLEMENT_REVOKED"

    await world.entitle(user_id=OTHER, revoked_at=datetime(2025, 3, 2, tzinfo=UTC))
    response = await client.get(PLAYER, headers=identity.headers(OTHER))
    assert response.status_code == 403
    assert response.json()["code"] == "ENTITLEMENT_REVOKED"


async def test_another_buyers_course_is_404_and_changes_nothing(
    client: Any, world: Any, identity: TestIdentity, db: Database
) -> None:
    await world.course()
    await world.entitle(user_id=OTHER)
    before = await player_state(db)
    for method, path in [
        ("GET", PLAYER),
        ("POST", f"{PLAYER}/start"),
        ("POST", f"{PLAYER}/restart"),
        ("GET", f"{PLAYER}/workouts/{WORKOUT_A}"),
        ("POST", f"{PLAYER}/workouts/{WORKOUT_A}/complete"),
        ("DELETE", f"{PLAYER}/workouts/{WORKOUT_A}/complete"),
    ]:
        response = await client.request(method, path, headers=identity.headers(BUYER))
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "COURSE_NOT_OWNED"
    assert await player_state(db) == before


async def test_current_day_uses_the_buyers_time_zone(
    client: Any, world: Any, identity: TestIdentity, clock: Any
) -> None:
    await world.course()
    await world.entitle()
    await client.post(
        f"{PLAYER}/start", json={"startDate": "2025-03-01"}, headers=identity.headers(BUYER)
    )
    clock.now = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)  # Sunday evening in Los Angeles

    utc = await client.get(PLAYER, headers=identity.headers(BUYER))
    by_query = await client.get(
        PLAYER, params={"tz": "America/Los_Angeles"}, headers=identity.headers(BUYER)
    )
    by_header = await client.get(
        PLAYER, headers={**identity.headers(BUYER), "X-Timezone": "America/Los_Angeles"}
    )

    assert utc.json()["currentDayOffset"] == 2
    assert by_query.json()["currentDayOffset"] == 1
    assert by_header.json()["currentDayOffset"] == 1


async def test_invalid_time_zone_is_400(client: Any, world: Any, identity: TestIdentity) -> None:
    await world.course()
    await world.entitle()
    response = await client.get(
        PLAYER, params={"tz": "Mars/Olympus"}, headers=identity.headers(BUYER)
    )
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_TIME_ZONE"


async def test_the_answer_is_the_plain_rendering_of_a_fresh_read(
    client: Any, world: Any, identity: TestIdentity, db: Database, clock: Any
) -> None:
    """The route sends pre-rendered days from its caches; a reader with empty caches and the
    Struct-built answer give the same bytes (rest day, repeated workout, some completions)."""
    await world.course()
    await world.entitle()
    await client.post(
        f"{PLAYER}/start", json={"startDate": "2025-03-01"}, headers=identity.headers(BUYER)
    )
    assert (await client.get(PLAYER, headers=identity.headers(BUYER))).status_code == 200
    await complete(client, identity, WORKOUT_A, dayOffset=2)  # the repeated workout's 2nd day
    await complete(client, identity, WORKOUT_B)

    response = await client.get(PLAYER, headers=identity.headers(BUYER))

    view = await player.open_course(
        SqlPlayerStorage(db, CourseReadModel()),
        BUYER,
        examples.COURSE,
        Clock(now=clock.now, zone=UTC_ZONE),
    )
    assert response.content == encode_json(player_course(view))
    assert response.headers["content-type"] == "application/json"
    assert response.json()["completedItemIds"] == sorted([ITEM_A2, ITEM_B0])


async def test_a_completion_shows_on_the_next_open(
    client: Any, world: Any, identity: TestIdentity
) -> None:
    await world.course()
    await world.entitle()
    assert (await client.get(PLAYER, headers=identity.headers(BUYER))).status_code == 200

    def flags(answer: Any) -> list[bool]:
        return [i["completed"] for d in answer.json()["days"] for i in d["items"]]

    await complete(client, identity, WORKOUT_A, dayOffset=2)
    opened = await client.get(PLAYER, headers=identity.headers(BUYER))
    assert flags(opened) == [False, False, True]
    assert opened.json()["completedCourseWorkoutIds"] == [WORKOUT_A]
    assert opened.json()["progress"] == {"completed": 1, "total": 3}

    await client.delete(f"{PLAYER}/workouts/{WORKOUT_A}/complete", headers=identity.headers(BUYER))
    opened = await client.get(PLAYER, headers=identity.headers(BUYER))
    assert flags(opened) == [False, False, False]
    assert opened.json()["completedItemIds"] == []


async def test_the_player_shows_adherence_in_the_buyers_zone(
    client: Any, world: Any, identity: TestIdentity, clock: Any
) -> None:
    """Started Sat 03-01. Day 0's A and B done at 03-02 03:00Z: Sat 19:00 in Los Angeles (on
    day 0), already Sunday (day 1, late) in UTC. On 03-03 10:00Z (day 2 in both zones) 2 of 3
    due items are done: 66 %; in Los Angeles day 0 is kept (streaks 1, today not done yet), in
    UTC it is not (0, 0). Completing day 2's A then: 100 %, streaks 2/2 and 1/1."""
    await world.course()
    await world.entitle()
    la = {"tz": "America/Los_Angeles"}
    await client.post(
        f"{PLAYER}/start", json={"startDate": "2025-03-01"}, headers=identity.headers(BUYER)
    )

    async def figures(params: dict[str, str]) -> tuple[Any, ...]:
        answer = (await client.get(PLAYER, params=params, headers=identity.headers(BUYER))).json()
        return (answer["adherencePercent"], answer["currentStreak"], answer["longestStreak"])

    clock.now = datetime(2025, 3, 1, 20, 0, tzinfo=UTC)
    assert await figures(la) == (0, 0, 0)  # day 0's two items due, none done
    clock.now = datetime(2025, 3, 2, 3, 0, tzinfo=UTC)
    await complete(client, identity, WORKOUT_A, dayOffset=0)
    await complete(client, identity, WORKOUT_B, dayOffset=0)
    clock.now = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
    assert await figures(la) == (66, 1, 1)
    assert await figures({}) == (66, 0, 0)

    await complete(client, identity, WORKOUT_A, dayOffset=2)
    assert await figures(la) == (100, 2, 2)
    assert await figures({}) == (100, 1, 1)


async def test_nothing_due_shows_null_adherence(
    client: Any, world: Any, identity: TestIdentity
) -> None:
    await world.course()
    await world.entitle()
    answer = (await client.get(PLAYER, headers=identity.headers(BUYER))).json()
    assert (answer["adherencePercent"], answer["currentStreak"], answer["longestStreak"]) == (
        None,
        0,
        0,
    )


async def test_a_workout_change_shows_on_the_next_open(
    client: Any, world: Any, identity: TestIdentity
) -> None:
    """The days are held per curriculum version, the workouts they show are checked too."""
    from coursemesh.contracts.catalog import WorkoutDeleted, WorkoutUpserted

    await world.course()
    await world.entitle()
    opened = await client.get(PLAYER, headers=identity.headers(BUYER))
    assert opened.json()["days"][0]["items"][1]["workout"]["title"] == "Core"

    await world.event(
        WorkoutUpserted(
            workout_id=examples.WORKOUT_B,
            organization_id=examples.ORG,
            title="Core, harder",
            description="Now with planks",
            duration_minutes=25,
            instructions="Brace.",
            media_urls=[],
        ),
        examples.WORKOUT_B,
        2,
    )
    opened = await client.get(PLAYER, headers=identity.headers(BUYER))
    assert opened.json()["days"][0]["items"][1]["workout"] == {
        "title": "Core, harder",
        "description": "Now with planks",
        "durationMinutes": 25,
    }
    # A deleted workout keeps its last content in curricula that use it.
    await world.event(
        WorkoutDeleted(
            workout_id=examples.WORKOUT_B,
            organization_id=examples.ORG,
            deleted_at=datetime(2025, 3, 3, tzinfo=UTC),
        ),
        examples.WORKOUT_B,
        3,
    )
    opened = await client.get(PLAYER, headers=identity.headers(BUYER))
    assert opened.json()["days"][0]["items"][1]["workout"]["title"] == "Core, harder"


# --- start -------------------------------------------------------------------------------------


async def test_start_stamps_today_by_default_and_clears_completed_at(
    client: Any, world: Any, identity: TestIdentity, clock: Any
) -> None:
    await world.course(
        days=[
            CurriculumDay(
                day_offset=0,
                is_rest=False,
                items=[
                    CurriculumItem(
                        item_id=examples.ITEM_A0, workout_id=examples.WORKOUT_A, position=0
                    )
                ],
            )
        ]
    )
    await world.entitle()
    done = await complete(client, identity, WORKOUT_A)
    assert done.json()["courseCompletedAt"] is not None
    clock.now = datetime(2025, 3, 3, 23, 30, tzinfo=UTC)  # already the 4th in Tokyo

    response = await client.post(
        f"{PLAYER}/start", params={"tz": "Asia/Tokyo"}, headers=identity.headers(BUYER)
    )

    assert response.status_code == 200
    assert response.json()["startDate"] == "2025-03-04"
    assert response.json()["completedAt"] is None
    opened = await client.get(PLAYER, params={"tz": "Asia/Tokyo"}, headers=identity.headers(BUYER))
    assert opened.json()["entitlement"]["startDate"] == "2025-03-04"
    assert opened.json()["currentDayOffset"] == 0


async def test_start_with_explicit_date(client: Any, world: Any, identity: TestIdentity) -> None:
    await world.course()
    await world.entitle()
    response = await client.post(
        f"{PLAYER}/start", json={"startDate": "2025-03-10"}, headers=identity.headers(BUYER)
    )
    assert response.status_code == 200
    assert response.json()["startDate"] == "2025-03-10"
    opened = await client.get(PLAYER, headers=identity.headers(BUYER))
    assert opened.json()["currentDayOffset"] == -7  # starts next week


async def test_start_bad_input_is_refused_and_changes_nothing(
    client: Any, world: Any, identity: TestIdentity, db: Database
) -> None:
    await world.course()
    await world.entitle()
    before = await player_state(db)
    headers = identity.headers(BUYER)
    cases = [
        ({"json": {"startDate": "2025-13-01"}}, 400, "VALIDATION_FAILED"),
        ({"json": {"startDate": "2031-01-01"}}, 422, "START_DATE_OUT_OF_RANGE"),
        ({"json": {"startDate": "1999-01-01"}}, 422, "START_DATE_OUT_OF_RANGE"),
        ({"json": {"start": "2025-03-03"}}, 400, "VALIDATION_FAILED"),
        ({"content": b'{"startDate": '}, 400, "MALFORMED_JSON"),
        ({"params": {"tz": "Nowhere/Atlantis"}}, 400, "INVALID_TIME_ZONE"),
    ]
    for kwargs, status, code in cases:
        response = await client.post(f"{PLAYER}/start", headers=headers, **kwargs)
        assert response.status_code == status, kwargs
        assert response.json()["code"] == code, kwargs
    wrong_token = {"Authorization": "Bearer not-a-jwt"}
    response = await client.post(f"{PLAYER}/start", headers=wrong_token)
    assert (response.status_code, response.json()["code"]) == (401, "INVALID_TOKEN")
    response = await client.post(f"{PLAYER}/start")
    assert (response.status_code, response.json()["code"]) == (401, "MISSING_TOKEN")
    assert await player_state(db) == before


# --- read a workout ----------------------------------------------------------------------------


async def test_read_workout_in_curriculum(client: Any, world: Any, identity: TestIdentity) -> None:
    await world.course()
    await world.entitle()
    response = await client.get(f"{PLAYER}/workouts/{WORKOUT_A}", headers=identity.headers(BUYER))
    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "Mobility flow"
    assert [(o["itemId"], o["dayOffset"]) for o in body["occurrences"]] == [
        (ITEM_A0, 0),
        (ITEM_A2, 2),
    ]


async def test_buyer_probing_a_library_workout_outside_the_course_gets_404(
    client: Any, world: Any, identity: TestIdentity
) -> None:
    await world.course(
        days=[
            CurriculumDay(
                day_offset=0,
                is_rest=False,
                items=[
                    CurriculumItem(
                        item_id=examples.ITEM_A0, workout_id=examples.WORKOUT_A, position=0
                    )
                ],
            )
        ]
    )  # workout B is in the org's library (projected) but not in this course
    await world.entitle()
    response = await client.get(f"{PLAYER}/workouts/{WORKOUT_B}", headers=identity.headers(BUYER))
    assert response.status_code == 404
    assert response.json()["code"] == "WORKOUT_NOT_IN_COURSE"


# --- mark complete / unmark --------------------------------------------------------------------


async def test_mark_complete_is_idempotent(
    client: Any, world: Any, identity: TestIdentity, db: Database
) -> None:
    await world.course()
    await world.entitle()
    first = await complete(client, identity, WORKOUT_B)
    second = await complete(client, identity, WORKOUT_B)
    assert first.status_code == second.status_code == 200
    assert (first.json()["changed"], second.json()["changed"]) == (True, False)
    assert second.json()["completedItemIds"] == [ITEM_B0]
    assert len((await player_state(db))["completions"]) == 1
    assert len(await outbox_events(db, "learning.workout.completed.v1")) == 1


async def test_mark_complete_rederives_completed_at_and_unmark_clears_it(
    client: Any, world: Any, identity: TestIdentity, db: Database
) -> None:
    await world.course()
    await world.entitle()
    await complete(client, identity, WORKOUT_A)
    await complete(client, identity, WORKOUT_B)
    last = await complete(client, identity, WORKOUT_A)  # day 2's occurrence
    assert last.json()["dayOffset"] == 2
    assert last.json()["courseCompletedAt"] == "2025-03-03T10:00:00Z"
    assert last.json()["progress"] == {"completed": 3, "total": 3}

    unmark = await client.delete(
        f"{PLAYER}/workouts/{WORKOUT_B}/complete", headers=identity.headers(BUYER)
    )

    assert unmark.status_code == 200
    assert unmark.json()["changed"] is True
    assert unmark.json()["courseCompletedAt"] is None
    opened = await client.get(PLAYER, headers=identity.headers(BUYER))
    assert opened.json()["entitlement"]["completedAt"] is None
    assert opened.json()["completedItemIds"] == sorted([ITEM_A0, ITEM_A2])


async def test_mark_a_rest_day_complete_is_404(
    client: Any, world: Any, identity: TestIdentity, db: Database
) -> None:
    await world.course()
    await world.entitle()
    before = await player_state(db)
    response = await complete(client, identity, WORKOUT_A, dayOffset=1)
    assert response.status_code == 404
    assert response.json()["code"] == "REST_DAY"
    assert await player_state(db) == before


async def test_completion_bad_input_is_refused_and_changes_nothing(
    client: Any, world: Any, identity: TestIdentity, db: Database
) -> None:
    await world.course()
    await world.entitle()
    before = await player_state(db)
    unknown = str(examples.AUDIO)
    cases = [
        (await complete(client, identity, unknown), 404, "WORKOUT_NOT_IN_COURSE"),
        (await complete(client, identity, WORKOUT_B, dayOffset=2), 404, "WORKOUT_NOT_ON_DAY"),
        (await complete(client, identity, WORKOUT_B, dayOffset=-1), 400, "VALIDATION_FAILED"),
        (await complete(client, identity, WORKOUT_B, day=0), 400, "VALIDATION_FAILED"),
        (
            await client.post(
                f"{PLAYER}/workouts/{WORKOUT_B}/complete",
                content=b"[1,",
                headers=identity.headers(BUYER),
            ),
            400,
            "MALFORMED_JSON",
        ),
        (
            await client.delete(
                f"{PLAYER}/workouts/{WORKOUT_B}/complete",
                params={"dayOffset": "x"},
                headers=identity.headers(BUYER),
            ),
            400,
            "VALIDATION_FAILED",
        ),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.json()["code"]) == (status, code)
    assert await player_state(db) == before


async def test_workout_on_several_days_completes_each_occurrence(
    client: Any, world: Any, identity: TestIdentity
) -> None:
    """A workout on several days is one completion per day: each occurrence counts."""
    await world.course()
    await world.entitle()
    on_day_2 = await complete(client, identity, WORKOUT_A, dayOffset=2)
    default = await complete(client, identity, WORKOUT_A)
    assert (on_day_2.json()["itemId"], on_day_2.json()["dayOffset"]) == (ITEM_A2, 2)
    assert (default.json()["itemId"], default.json()["dayOffset"]) == (ITEM_A0, 0)

    unmark_day_0 = await client.delete(
        f"{PLAYER}/workouts/{WORKOUT_A}/complete",
        params={"dayOffset": 0},
        headers=identity.headers(BUYER),
    )
    assert unmark_day_0.json()["completedItemIds"] == [ITEM_A2]
    unmark_latest = await client.delete(
        f"{PLAYER}/workouts/{WORKOUT_A}/complete", headers=identity.headers(BUYER)
    )
    assert (unmark_latest.json()["itemId"], unmark_latest.json()["changed"]) == (ITEM_A2, True)
    assert unmark_latest.json()["completedItemIds"] == []


# --- restart -----------------------------------------------------------------------------------


async def test_restart_resets_the_run_and_keeps_history(
    client: Any, world: Any, identity: TestIdentity, db: Database, clock: Any
) -> None:
    await world.course()
    await world.entitle()
    await client.post(
        f"{PLAYER}/start", json={"startDate": "2025-02-01"}, headers=identity.headers(BUYER)
    )
    for workout in (WORKOUT_A, WORKOUT_B, WORKOUT_A):
        await complete(client, identity, workout)
    clock.now = datetime(2025, 3, 20, 8, 0, tzinfo=UTC)

    response = await client.post(f"{PLAYER}/restart", headers=identity.headers(BUYER))

    assert response.status_code == 200
    body = response.json()
    assert (body["startDate"], body["completedAt"], body["restartCount"]) == ("2025-03-20", None, 1)
    opened = (await client.get(PLAYER, headers=identity.headers(BUYER))).json()
    assert opened["completedItemIds"] == []
    assert opened["currentDayOffset"] == 0
    state = await player_state(db)
    assert state["completions"] == []
    assert sorted((h.item_id.hex, h.run, h.reason) for h in state["history"]) == sorted(
        (examples_item.hex, 0, "restart")
        for examples_item in (examples.ITEM_A0, examples.ITEM_B0, examples.ITEM_A2)
    )


async def test_restart_a_not_yet_started_course_is_identical_to_start(
    client: Any, world: Any, identity: TestIdentity
) -> None:
    await world.course()
    await world.entitle()
    response = await client.post(f"{PLAYER}/restart", headers=identity.headers(BUYER))
    assert response.status_code == 200
    assert (response.json()["startDate"], response.json()["restartCount"]) == ("2025-03-03", 1)


# --- curriculum changes and revocation ---------------------------------------------------------


async def test_mid_course_curriculum_change_keeps_surviving_completions(
    client: Any, world: Any, identity: TestIdentity, db: Database
) -> None:
    await world.course()
    await world.entitle()
    await complete(client, identity, WORKOUT_A)  # day 0
    await complete(client, identity, WORKOUT_B)  # day 0
    # Opened once before the change, so the player holds the old curriculum decoded in memory.
    before = (await client.get(PLAYER, headers=identity.headers(BUYER))).json()
    assert before["curriculumVersion"] != 2
    assert before["durationDays"] != 2
    new_item = examples.REGEN
    # Trainer swaps day 0's workout B for a new item of workout B on day 1; day 0's A survives.
    await world.curriculum(
        [
            CurriculumDay(
                day_offset=0,
                is_rest=False,
                items=[
                    CurriculumItem(
                        item_id=examples.ITEM_A0, workout_id=examples.WORKOUT_A, position=0
                    )
                ],
            ),
            CurriculumDay(
                day_offset=1,
                is_rest=False,
                items=[CurriculumItem(item_id=new_item, workout_id=examples.WORKOUT_B, position=0)],
            ),
        ],
        curriculum_version=2,
    )

    opened = (await client.get(PLAYER, headers=identity.headers(BUYER))).json()

    assert opened["curriculumVersion"] == 2
    assert opened["durationDays"] == 2
    assert opened["completedItemIds"] == [ITEM_A0]
    assert opened["days"][1]["items"][0]["itemId"] == str(new_item)
    assert opened["progress"] == {"completed": 1, "total": 2}
    history = (await player_state(db))["history"]
    assert [(h.item_id, h.reason) for h in history] == [(examples.ITEM_B0, "curriculum_changed")]


async def test_curriculum_gaining_items_uncompletes_a_completed_course(
    client: Any, world: Any, identity: TestIdentity
) -> None:
    one_day = [
        CurriculumDay(
            day_offset=0,
            is_rest=False,
            items=[
                CurriculumItem(item_id=examples.ITEM_A0, workout_id=examples.WORKOUT_A, position=0)
            ],
        )
    ]
    await world.course(days=one_day)
    await world.entitle()
    assert (await complete(client, identity, WORKOUT_A)).json()["courseCompletedAt"] is not None
    await world.curriculum(
        [
            *one_day,
            CurriculumDay(
                day_offset=1,
                is_rest=False,
                items=[
                    CurriculumItem(
                        item_id=examples.ITEM_B0, workout_id=examples.WORKOUT_B, position=0
                    )
                ],
            ),
        ],
        curriculum_version=2,
    )
    opened = (await client.get(PLAYER, headers=identity.headers(BUYER))).json()
    assert opened["entitlement"]["completedAt"] is None
    assert opened["completedItemIds"] == [ITEM_A0]


async def test_revocation_takes_effect_on_the_next_call(
    client: Any, world: Any, identity: TestIdentity
) -> None:
    await world.course()
    await world.entitle()
    assert (await client.get(PLAYER, headers=identity.headers(BUYER))).status_code == 200
    await world.entitle(status="revoked", revoked_at=datetime(2025, 3, 3, tzinfo=UTC))
    for method, path in [("GET", PLAYER), ("POST", f"{PLAYER}/workouts/{WORKOUT_A}/complete")]:
        response = await client.request(method, path, headers=identity.headers(BUYER))
        assert (response.status_code, response.json()["code"]) == (403, "ENTITLEMENT_REVOKED")
    listed = await client.get("/me/courses", headers=identity.headers(BUYER))
    assert listed.json()["courses"] == []


async def test_archived_course_keeps_existing_buyers_access(
    client: Any, world: Any, identity: TestIdentity
) -> None:
    from coursemesh.contracts.catalog import CourseArchived

    await world.course()
    await world.entitle()
    world.course_version += 1
    await world.event(
        CourseArchived(
            course_id=examples.COURSE,
            organization_id=examples.ORG,
            archived_at=datetime(2025, 3, 3, tzinfo=UTC),
        ),
        examples.COURSE,
        world.course_version,
    )
    response = await client.get(PLAYER, headers=identity.headers(BUYER))
    assert response.status_code == 200
    assert response.json()["courseStatus"] == "archived"


# --- the fast route's inputs ---------------------------------------------------------------------


@get("/me/courses/{course_id:uuid}")
async def ordinary_player(tz: TimeZoneQuery = None, x_timezone: TimeZoneHeader = None) -> None:
    """The player's time zone parameters declared the ordinary way."""


async def test_the_player_refuses_bad_time_zones_as_ordinary_parameters_would(
    client: Any, world: Any, identity: TestIdentity
) -> None:
    """The player route takes only ``request``; a twin declaring the same time zone parameters
    as handler arguments answers the same bad input with the same problem."""
    await world.course()
    await world.entitle()
    long_name = "America/" + "x" * 60
    cases: list[dict[str, Any]] = [
        {"params": {"tz": long_name}},
        {"headers": {"X-Timezone": long_name}},
        {"params": {"tz": long_name}, "headers": {"X-Timezone": long_name}},
        {"params": [("tz", "UTC"), ("tz", long_name)]},
    ]
    app = Litestar([ordinary_player], exception_handlers=exception_handlers())
    async with AsyncTestClient(app) as ordinary:
        for case in cases:
            headers = {**identity.headers(BUYER), **case.get("headers", {})}
            fast = await client.get(PLAYER, params=case.get("params"), headers=headers)
            plain = await ordinary.get(PLAYER, params=case.get("params"), headers=headers)
            assert fast.status_code == plain.status_code == 400, case
            assert fast.json() == plain.json(), case
            assert fast.json()["code"] == "VALIDATION_FAILED"


async def test_the_player_documents_the_parameters_it_reads(client: Any) -> None:
    schema = client.app.openapi_schema.to_schema()
    operation = schema["paths"]["/me/courses/{course_id}"]["get"]
    named = {(p["name"], p["in"]): p for p in operation["parameters"]}
    assert set(named) == {("course_id", "path"), ("tz", "query"), ("X-Timezone", "header")}
    for key in (("tz", "query"), ("X-Timezone", "header")):
        assert named[key]["schema"]["maxLength"] == 64
        assert named[key]["required"] is False
    assert "200" in operation["responses"]
