"""The workout library: CRUD with events; delete is a soft delete that curricula survive."""

from __future__ import annotations

import uuid

from coursemesh.catalog.testing import Api, error_paths, problem, table_state
from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import outbox_events


async def test_workout_crud_publishes_full_state(api: Api, db: Database) -> None:
    org = await api.create_org()
    workout = await api.create_workout(org, "Mobility")
    r = await api.request(
        "PATCH", f"/organizations/{org}/workouts/{workout}", json={"durationMinutes": 30}
    )
    assert r.json()["durationMinutes"] == 30
    assert r.json()["title"] == "Mobility"
    r = await api.request("GET", f"/organizations/{org}/workouts")
    assert [w["id"] for w in r.json()] == [workout]
    events = await outbox_events(db, "catalog.workout.upserted.v1")
    assert [(e.aggregate_version, e.payload.duration_minutes) for e in events] == [(1, 20), (2, 30)]
    assert events[0].payload.media_urls == ["https://cdn.example.com/a.mp4"]
    r = await api.request("DELETE", f"/organizations/{org}/workouts/{workout}")
    assert r.status_code == 204
    (deleted,) = await outbox_events(db, "catalog.workout.deleted.v1")
    assert deleted.aggregate_version == 3
    r = await api.request("GET", f"/organizations/{org}/workouts/{workout}")
    problem(r, 404, "WORKOUT_NOT_FOUND")
    r = await api.request("GET", f"/organizations/{org}/workouts")
    assert r.json() == []


async def test_deleted_workout_stays_in_curricula_but_cannot_be_added(
    api: Api, db: Database
) -> None:
    org, course, workout = await api.published_course()
    r = await api.request("DELETE", f"/organizations/{org}/workouts/{workout}")
    assert r.status_code == 204
    r = await api.request("GET", f"/organizations/{org}/courses/{course}")
    assert r.json()["curriculum"][0]["items"][0]["workoutId"] == workout
    before = await table_state(db)
    r = await api.request(
        "POST",
        f"/organizations/{org}/courses/{course}/days",
        json={"dayOffset": 1, "workoutIds": [workout]},
    )
    assert error_paths(problem(r, 422, "UNKNOWN_WORKOUT")) == ["$.workoutIds[0]"]
    assert await table_state(db) == before


async def test_workout_bad_input(api: Api, db: Database) -> None:
    org = await api.create_org()
    path = f"/organizations/{org}/workouts"
    before = await table_state(db)
    r = await api.request("POST", path, json={"title": "X", "durationMinutes": -5})
    assert error_paths(problem(r, 400, "VALIDATION_FAILED")) == ["$.durationMinutes"]
    r = await api.request("POST", path, json={"title": "X", "durationMinutes": 2.5})
    assert error_paths(problem(r, 400, "VALIDATION_FAILED")) == ["$.durationMinutes"]
    r = await api.request("POST", path, json={"title": ""})
    assert error_paths(problem(r, 400, "VALIDATION_FAILED")) == ["$.title"]
    r = await api.request("POST", path, json={"title": "X", "mediaUrls": ["ftp://x"]})
    assert error_paths(problem(r, 400, "VALIDATION_FAILED")) == ["$.mediaUrls[0]"]
    r = await api.request("PATCH", f"{path}/{uuid.uuid4()}", json={"title": "Y"})
    problem(r, 404, "WORKOUT_NOT_FOUND")
    assert await table_state(db) == before
