"""Learning's own events go through the outbox with one version counter per enrollment."""

from __future__ import annotations

from datetime import date
from typing import Any

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity, outbox_events
from coursemesh.contracts import examples

PLAYER = f"/me/courses/{examples.COURSE}"
BUYER = "user_buyer"


async def test_player_actions_publish_versioned_events(
    client: Any, world: Any, identity: TestIdentity, db: Database
) -> None:
    await world.course()
    entitlement_id = await world.entitle()
    headers = identity.headers(BUYER)
    await client.post(f"{PLAYER}/start", json={"startDate": "2025-03-02"}, headers=headers)
    for workout in (examples.WORKOUT_A, examples.WORKOUT_B, examples.WORKOUT_A):
        await client.post(f"{PLAYER}/workouts/{workout}/complete", headers=headers)
    await client.post(f"{PLAYER}/workouts/{examples.WORKOUT_A}/complete", headers=headers)  # repeat
    await client.post(f"{PLAYER}/restart", headers=headers)

    events = await outbox_events(db)

    assert [(e.type, e.aggregate_version) for e in events] == [
        ("learning.course.started.v1", 1),
        ("learning.workout.completed.v1", 2),
        ("learning.workout.completed.v1", 3),
        ("learning.workout.completed.v1", 4),
        ("learning.course.completed.v1", 5),
        ("learning.course.restarted.v1", 6),
    ]
    assert {e.aggregate_id for e in events} == {str(entitlement_id)}
    started, first, _, last, finished, restarted = (e.payload for e in events)
    assert (started.start_date, started.restart_count, started.user_id) == (
        date(2025, 3, 2),
        0,
        BUYER,
    )
    assert (first.item_id, first.day_offset, first.curriculum_version) == (examples.ITEM_A0, 0, 1)
    assert (last.item_id, last.day_offset) == (examples.ITEM_A2, 2)
    assert finished.course_id == examples.COURSE
    assert (restarted.restart_count, restarted.start_date) == (1, date(2025, 3, 3))
