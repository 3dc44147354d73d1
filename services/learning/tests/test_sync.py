"""Offline sync over HTTP on PostgreSQL: the change log, offline operations, the sanity check."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity, outbox_events
from coursemesh.contracts import examples
from coursemesh.contracts.catalog import WorkoutUpserted
from coursemesh.contracts.types import CurriculumDay, CurriculumItem
from coursemesh.learning.adapters.storage import SqlPlayerStorage
from coursemesh.learning.adapters.tables import completions
from coursemesh.learning.app import sync
from coursemesh.learning.app.courses import CourseReadModel

from .conftest import (
    BUYER,
    COURSE,
    ITEM_A0,
    NOW,
    ORG,
    OTHER_BUYER,
    WORKOUT_A,
    WORKOUT_B,
    World,
)

SECOND = examples.PLAN  # any uuid: a second course
SYNC = "/me/sync"
OPERATIONS = "/me/sync/operations"
SANITY = "/me/sync/sanity"


async def two_courses(world: World) -> None:
    await world.course()
    await world.course(course_id=SECOND, name="Second")
    await world.entitle()
    await world.entitle(course_id=SECOND)


async def post(client: Any, identity: TestIdentity, path: str, body: Any, user: str = BUYER) -> Any:
    return await client.post(path, json=body, headers=identity.headers(user))


def op(kind: str, at: Any, workout: Any = WORKOUT_A, course: Any = COURSE, **more: Any) -> Any:
    body = {"id": str(uuid.uuid4()), "type": kind, "courseId": str(course), "at": at.isoformat()}
    if workout is not None:
        body["workoutId"] = str(workout)
    return body | more


def checksums(body: dict[str, Any]) -> dict[str, str]:
    return {c["courseId"]: c["checksum"] for c in body["courses"]}


async def test_first_sync_pages_then_a_sync_from_the_cursor_is_empty(
    db: Database, world: World
) -> None:
    await two_courses(world)
    storage = SqlPlayerStorage(db, CourseReadModel())

    first = await sync.changes(storage, BUYER, None, 1)
    second = await sync.changes(storage, BUYER, first.cursor, 1)
    after = await sync.changes(storage, BUYER, second.cursor, 1)

    assert (len(first.courses), first.more) == (1, True)
    assert (len(second.courses), second.more) == (1, False)
    assert {first.courses[0].course_id, second.courses[0].course_id} == {COURSE, SECOND}
    assert (after.courses, after.removed, after.more, after.cursor) == (
        [],
        [],
        False,
        second.cursor,
    )


async def test_documents_carry_the_course_and_a_checksum_a_client_can_recompute(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await two_courses(world)

    body = (await post(client, identity, SYNC, {})).json()
    again = (await post(client, identity, SYNC, {"cursor": body["cursor"]})).json()

    assert body["more"] is False
    assert body["files"] == []
    assert body["removed"] == []
    document = next(c for c in body["courses"] if c["courseId"] == str(COURSE))
    assert document["kind"] == "trainer"
    assert [d["dayOffset"] for d in document["days"]] == [0, 1, 2]
    assert {w["workoutId"] for w in document["workouts"]} == {str(WORKOUT_A), str(WORKOUT_B)}
    assert document["state"]["completedItemIds"] == []
    for course in body["courses"]:
        unsigned = {k: v for k, v in course.items() if k != "checksum"}
        canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.md5(canonical.encode()).hexdigest() == course["checksum"]
    assert again == {
        "cursor": body["cursor"],
        "courses": [],
        "removed": [],
        "files": [],
        "more": False,
    }


async def test_a_player_write_a_curriculum_change_and_a_revocation_reach_the_next_sync(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await two_courses(world)
    cursor = (await post(client, identity, SYNC, {})).json()["cursor"]

    done = await client.post(
        f"/me/courses/{COURSE}/workouts/{WORKOUT_A}/complete", headers=identity.headers(BUYER)
    )
    assert done.status_code == 200
    after_write = (await post(client, identity, SYNC, {"cursor": cursor})).json()
    assert [c["courseId"] for c in after_write["courses"]] == [str(COURSE)]
    assert after_write["courses"][0]["state"]["completedItemIds"] == [str(ITEM_A0)]

    await world.curriculum(
        [
            CurriculumDay(
                day_offset=0,
                is_rest=False,
                items=[CurriculumItem(item_id=uuid.uuid4(), workout_id=WORKOUT_B, position=0)],
            )
        ],
        2,
        course_id=SECOND,
    )
    after_change = (await post(client, identity, SYNC, {"cursor": after_write["cursor"]})).json()
    assert [c["courseId"] for c in after_change["courses"]] == [str(SECOND)]
    assert after_change["courses"][0]["curriculumVersion"] == 2

    await world.entitle(status="revoked", revoked_at=NOW)
    after_revoke = (await post(client, identity, SYNC, {"cursor": after_change["cursor"]})).json()
    assert (after_revoke["courses"], after_revoke["removed"]) == ([], [str(COURSE)])

    await world.entitle()  # bought again: the same entitlement, active
    back = (await post(client, identity, SYNC, {"cursor": after_revoke["cursor"]})).json()
    assert ([c["courseId"] for c in back["courses"]], back["removed"]) == ([str(COURSE)], [])


async def test_two_devices_syncing_alternately_converge(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await two_courses(world)
    phone = (await post(client, identity, SYNC, {})).json()
    tablet = (await post(client, identity, SYNC, {})).json()
    held_phone, held_tablet = checksums(phone), checksums(tablet)

    applied = await post(
        client, identity, OPERATIONS, {"operations": [op("complete", NOW - timedelta(hours=1))]}
    )
    assert applied.status_code == 200, applied.text
    tablet = (await post(client, identity, SYNC, {"cursor": tablet["cursor"]})).json()
    held_tablet |= checksums(tablet)
    await client.post(
        f"/me/courses/{SECOND}/workouts/{WORKOUT_B}/complete", headers=identity.headers(BUYER)
    )
    phone = (await post(client, identity, SYNC, {"cursor": phone["cursor"]})).json()
    held_phone |= checksums(phone)
    tablet = (await post(client, identity, SYNC, {"cursor": tablet["cursor"]})).json()
    held_tablet |= checksums(tablet)

    assert held_phone == held_tablet
    assert phone["cursor"] == tablet["cursor"]
    report = await post(
        client, identity, SANITY, {"counts": {"courses": 2}, "checksums": held_phone}
    )
    assert report.json() == {"ok": True, "refetch": [], "remove": [], "missing": []}


async def test_a_batch_sent_three_times_applies_once(
    client: Any, world: World, identity: TestIdentity, db: Database
) -> None:
    await world.course()
    await world.entitle()
    batch = {
        "operations": [
            op("complete", NOW - timedelta(hours=2), dayOffset=0),
            op("complete", NOW - timedelta(hours=1), workout=WORKOUT_B),
        ]
    }

    answers = [(await post(client, identity, OPERATIONS, batch)).json() for _ in range(3)]

    assert answers[0]["applied"] == answers[1]["applied"] == answers[2]["applied"]
    assert len(answers[0]["applied"]) == 2
    assert answers[0]["rejected"] == []
    async with db.engine.connect() as conn:
        rows = (await conn.execute(sa.select(completions.c.completed_at))).scalars().all()
    assert sorted(rows) == [NOW - timedelta(hours=2), NOW - timedelta(hours=1)]
    completed = [e for e in await outbox_events(db) if e.type == "learning.workout.completed.v1"]
    assert len(completed) == 2
    state = answers[2]["state"][0]
    assert state["courseId"] == str(COURSE)
    assert len(state["state"]["completedItemIds"]) == 2


async def test_the_latest_change_of_an_item_wins(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await world.course()
    await world.entitle()
    t1, t2 = NOW - timedelta(hours=3), NOW - timedelta(hours=1)

    phone = await post(client, identity, OPERATIONS, {"operations": [op("complete", t1)]})
    tablet = await post(client, identity, OPERATIONS, {"operations": [op("unmark", t2)]})
    late = await post(
        client,
        identity,
        OPERATIONS,
        {"operations": [op("complete", NOW - timedelta(hours=2), dayOffset=0)]},
    )

    assert len(phone.json()["applied"]) == 1
    assert len(tablet.json()["applied"]) == 1
    assert [r["code"] for r in late.json()["rejected"]] == ["SUPERSEDED"]
    assert late.json()["state"][0]["state"]["completedItemIds"] == []


async def test_an_offline_change_made_before_a_restart_is_superseded_by_it(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await world.course()
    await world.entitle()
    before = NOW - timedelta(hours=2)
    restart = await post(
        client, identity, OPERATIONS, {"operations": [op("restart", NOW - timedelta(hours=1))]}
    )

    late = await post(client, identity, OPERATIONS, {"operations": [op("complete", before)]})

    assert len(restart.json()["applied"]) == 1
    # the item was never completed, yet the change belongs to the run the restart archived
    assert [r["code"] for r in late.json()["rejected"]] == ["SUPERSEDED"]
    assert late.json()["state"][0]["state"]["completedItemIds"] == []


async def test_refused_operations_are_reported_and_the_others_apply(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await two_courses(world)
    await world.entitle(course_id=SECOND, status="revoked", revoked_at=NOW)
    at = NOW - timedelta(hours=1)
    gone = op("complete", at, workout=uuid.uuid4())
    revoked = op("complete", at, course=SECOND)
    future = op("complete", NOW + timedelta(hours=1), workout=WORKOUT_B)
    fine = op("complete", at)

    body = (
        await post(client, identity, OPERATIONS, {"operations": [gone, revoked, future, fine]})
    ).json()

    assert [a["id"] for a in body["applied"]] == [fine["id"]]
    assert {r["id"]: r["code"] for r in body["rejected"]} == {
        gone["id"]: "WORKOUT_NOT_IN_COURSE",
        revoked["id"]: "ENTITLEMENT_REVOKED",
        future["id"]: "AT_IN_FUTURE",
    }
    assert [s["courseId"] for s in body["state"]] == [str(COURSE)]


async def test_a_cursor_the_caller_was_not_given_is_refused(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await two_courses(world)
    await world.course(course_id=SECOND)  # the second course changes again: a later number
    buyers = (await post(client, identity, SYNC, {})).json()["cursor"]
    await world.entitle(user_id=OTHER_BUYER)

    refused = await post(client, identity, SYNC, {"cursor": buyers}, user=OTHER_BUYER)
    garbage = await post(client, identity, SYNC, {"cursor": "v1.-1"})

    assert (refused.status_code, refused.json()["code"]) == (422, "SYNC_CURSOR_INVALID")
    assert (garbage.status_code, garbage.json()["code"]) == (422, "SYNC_CURSOR_INVALID")


async def test_every_sync_route_needs_a_token(client: Any) -> None:
    for path, body in (
        (SYNC, {}),
        (OPERATIONS, {"operations": [op("start", NOW)]}),
        (SANITY, {"counts": {"courses": 0}, "checksums": {}}),
    ):
        assert (await client.post(path, json=body)).status_code == 401


async def test_sanity_names_what_to_refetch_remove_and_fetch_and_nothing_of_others(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await world.course()
    await world.course(course_id=SECOND, name="Second")
    await world.entitle()
    await world.entitle(user_id=OTHER_BUYER, course_id=SECOND)
    third = uuid.uuid4()
    await world.course(course_id=third, name="Third")
    await world.entitle(course_id=third)
    held = checksums((await post(client, identity, SYNC, {})).json())

    body = {
        "counts": {"courses": 2},
        "checksums": {str(COURSE): "0" * 32, str(SECOND): "1" * 32},
    }
    report = (await post(client, identity, SANITY, body)).json()
    exact = {str(COURSE): held[str(COURSE)], str(third): held[str(third)]}
    fine = await post(client, identity, SANITY, {"counts": {"courses": 2}, "checksums": exact})

    assert report == {
        "ok": False,
        "refetch": [str(COURSE)],
        "remove": [str(SECOND)],  # another buyer's: simply not held
        "missing": [str(third)],
    }
    assert fine.json()["ok"] is True
    too_many = {str(uuid.uuid4()): "0" * 32 for _ in range(1001)}
    over = await post(client, identity, SANITY, {"counts": {"courses": 0}, "checksums": too_many})
    assert (over.status_code, over.json()["code"]) == (422, "SYNC_TOO_MANY_COURSES")


async def test_a_malformed_batch_applies_nothing(
    client: Any, world: World, identity: TestIdentity, db: Database
) -> None:
    await world.course()
    await world.entitle()
    fine = op("complete", NOW - timedelta(hours=1))
    naive = fine | {"id": str(uuid.uuid4()), "at": "2025-03-03T09:00:00"}
    no_workout = op("unmark", NOW - timedelta(hours=1), workout=None)

    refused = [
        await post(client, identity, OPERATIONS, {"operations": [fine, naive]}),
        await post(client, identity, OPERATIONS, {"operations": [fine, no_workout]}),
        await post(client, identity, OPERATIONS, {"operations": []}),
    ]

    assert [r.status_code for r in refused] == [400, 422, 400]
    assert refused[1].json()["code"] == "SYNC_WORKOUT_REQUIRED"
    async with db.engine.connect() as conn:
        assert (await conn.execute(sa.select(completions))).all() == []
    again = (await post(client, identity, OPERATIONS, {"operations": [fine]})).json()
    assert [a["id"] for a in again["applied"]] == [fine["id"]]  # the id was never kept


async def test_a_workout_or_details_change_reaches_every_holder_of_its_courses(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await two_courses(world)
    await world.entitle(user_id=OTHER_BUYER)
    mine = (await post(client, identity, SYNC, {})).json()["cursor"]
    theirs = (await post(client, identity, SYNC, {}, user=OTHER_BUYER)).json()["cursor"]

    await world.event(
        WorkoutUpserted(
            workout_id=WORKOUT_A,
            organization_id=ORG,
            title="Mobility flow, longer",
            description=None,
            duration_minutes=30,
            instructions="Breathe.",
            media_urls=[],
        ),
        WORKOUT_A,
        2,
    )
    mine_after = (await post(client, identity, SYNC, {"cursor": mine})).json()
    theirs_after = (await post(client, identity, SYNC, {"cursor": theirs}, user=OTHER_BUYER)).json()
    await world.course(course_id=SECOND, name="Second, renamed")
    renamed = (await post(client, identity, SYNC, {"cursor": mine_after["cursor"]})).json()

    assert sorted(c["courseId"] for c in mine_after["courses"]) == sorted(
        [str(COURSE), str(SECOND)]
    )
    assert [c["courseId"] for c in theirs_after["courses"]] == [str(COURSE)]
    titles = {w["title"] for w in theirs_after["courses"][0]["workouts"]}
    assert "Mobility flow, longer" in titles
    assert [c["name"] for c in renamed["courses"]] == ["Second, renamed"]
