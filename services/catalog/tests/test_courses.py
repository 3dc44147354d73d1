"""Courses: the lifecycle (draft, published, archived), the trainer's flows, curriculum
versioning, the events with their payloads and versions, and the bad-input list."""

from __future__ import annotations

from coursemesh.catalog.testing import Api, error_paths, problem, table_state
from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import outbox_events


async def _course_events(db: Database, course: str) -> list[tuple[int, str]]:
    return [
        (e.aggregate_version, e.type) for e in await outbox_events(db) if e.aggregate_id == course
    ]


async def test_lifecycle_new_to_draft_creates_program_and_config(api: Api, db: Database) -> None:
    org = await api.create_org()
    course = await api.create_course(org, duration_days=3)
    r = await api.request("GET", f"/organizations/{org}/courses/{course}")
    body = r.json()
    assert (body["status"], body["durationDays"], body["curriculumVersion"]) == ("draft", 3, 0)
    assert [d["dayOffset"] for d in body["curriculum"]] == [0, 1, 2]
    (details,) = await outbox_events(db, "catalog.course.details_changed.v1")
    assert (details.aggregate_id, details.aggregate_version) == (course, 1)
    assert details.payload.status == "draft"
    assert details.payload.preview_type == "first_day"


async def test_lifecycle_draft_to_published_requires_curriculum(api: Api, db: Database) -> None:
    org = await api.create_org()
    course = await api.create_course(org)
    await api.set_day(org, course, 1, is_rest=True)  # a rest day is not a curriculum entry
    before = await table_state(db)
    r = await api.request("POST", f"/organizations/{org}/courses/{course}/publish")
    problem(r, 409, "CURRICULUM_EMPTY")
    assert await table_state(db) == before
    workout = await api.create_workout(org)
    await api.set_day(org, course, 0, [workout])
    body = await api.publish(org, course)
    assert body["status"] == "published"
    assert body["publishedAt"] is not None
    assert body["archivedAt"] is None
    (published,) = await outbox_events(db, "catalog.course.published.v1")
    assert published.payload.curriculum_version == 2
    assert await _course_events(db, course) == [
        (1, "catalog.course.details_changed.v1"),
        (2, "catalog.course.curriculum_changed.v1"),
        (3, "catalog.course.curriculum_changed.v1"),
        (4, "catalog.course.published.v1"),
    ]
    r = await api.request("POST", f"/organizations/{org}/courses/{course}/publish")
    problem(r, 409, "COURSE_ALREADY_PUBLISHED")


async def test_lifecycle_draft_or_published_to_archived(api: Api, db: Database) -> None:
    org = await api.create_org()
    draft = await api.create_course(org)
    r = await api.request("DELETE", f"/organizations/{org}/courses/{draft}")
    assert r.status_code == 200
    assert r.json()["status"] == "archived"
    org2, published, _ = await api.published_course()
    r = await api.request("DELETE", f"/organizations/{org2}/courses/{published}")
    assert r.json()["status"] == "archived"
    assert r.json()["archivedAt"] is not None
    archived = await outbox_events(db, "catalog.course.archived.v1")
    assert {e.aggregate_id for e in archived} == {draft, published}
    before = await table_state(db)
    r = await api.request("DELETE", f"/organizations/{org2}/courses/{published}")
    problem(r, 409, "COURSE_ALREADY_ARCHIVED")
    assert await table_state(db) == before


async def test_lifecycle_archived_to_published_clears_archived_at(api: Api, db: Database) -> None:
    org, course, _ = await api.published_course()
    await api.request("DELETE", f"/organizations/{org}/courses/{course}")
    body = await api.publish(org, course)
    assert (body["status"], body["archivedAt"]) == ("published", None)
    assert [v for v, _ in await _course_events(db, course)] == [1, 2, 3, 4, 5]


async def test_trainer_flow_edit_metadata(api: Api, db: Database) -> None:
    org = await api.create_org()
    course = await api.create_course(org, duration_days=3)
    r = await api.request(
        "PATCH",
        f"/organizations/{org}/courses/{course}",
        json={"name": "New name", "imageUrl": None, "previewType": "all_titles"},
    )
    body = r.json()
    assert (body["name"], body["imageUrl"], body["previewType"]) == ("New name", None, "all_titles")
    assert body["curriculumVersion"] == 0  # no duration change: the curriculum is the same
    details = await outbox_events(db, "catalog.course.details_changed.v1")
    assert details[-1].payload.name == "New name"
    assert details[-1].aggregate_version == 2
    r = await api.request(
        "PATCH", f"/organizations/{org}/courses/{course}", json={"durationDays": 5}
    )
    assert (r.json()["durationDays"], r.json()["curriculumVersion"]) == (5, 1)
    (curriculum,) = await outbox_events(db, "catalog.course.curriculum_changed.v1")
    assert len(curriculum.payload.days) == 5
    assert curriculum.aggregate_version == 4


async def test_trainer_sets_daily_release_and_pause_limits(api: Api, db: Database) -> None:
    org = await api.create_org()
    course = await api.create_course(org, duration_days=3)
    url = f"/organizations/{org}/courses/{course}"
    r = await api.request(
        "PATCH", url, json={"releaseMode": "daily", "maxPauses": 2, "maxPauseDays": 7}
    )
    body = r.json()
    assert (body["releaseMode"], body["maxPauses"], body["maxPauseDays"]) == ("daily", 2, 7)
    details = (await outbox_events(db, "catalog.course.details_changed.v1"))[-1].payload
    assert (details.release_mode, details.max_pauses, details.max_pause_days) == ("daily", 2, 7)
    # Another edit keeps them; null is unlimited again.
    r = await api.request("PATCH", url, json={"name": "Renamed", "maxPauses": None})
    assert (r.json()["releaseMode"], r.json()["maxPauses"], r.json()["maxPauseDays"]) == (
        "daily",
        None,
        7,
    )
    before = await table_state(db)
    for bad in ({"releaseMode": "weekly"}, {"maxPauses": -1}, {"maxPauseDays": "3"}):
        assert (await api.request("PATCH", url, json=bad)).status_code == 400
    assert await table_state(db) == before


async def test_trainer_flow_shrinking_duration_below_a_set_day_is_refused(
    api: Api, db: Database
) -> None:
    org = await api.create_org()
    course = await api.create_course(org, duration_days=5)
    await api.set_day(org, course, 3, is_rest=True)
    before = await table_state(db)
    r = await api.request(
        "PATCH", f"/organizations/{org}/courses/{course}", json={"durationDays": 3}
    )
    assert error_paths(problem(r, 409, "DURATION_BELOW_CURRICULUM")) == ["$.durationDays"]
    assert await table_state(db) == before
    r = await api.request(
        "PATCH", f"/organizations/{org}/courses/{course}", json={"durationDays": 4}
    )
    assert r.status_code == 200


async def test_trainer_flow_set_day_replaces_the_day_and_keeps_order(
    api: Api, db: Database
) -> None:
    org = await api.create_org()
    a = await api.create_workout(org, "A")
    b = await api.create_workout(org, "B")
    course = await api.create_course(org, duration_days=3)
    await api.set_day(org, course, 0, [a, b])
    body = await api.set_day(org, course, 0, [b, a, b])  # replaced; repeats allowed
    day0 = body["curriculum"][0]
    assert [(i["workoutId"], i["position"]) for i in day0["items"]] == [(b, 0), (a, 1), (b, 2)]
    body = await api.set_day(org, course, 2, [a])  # same workout on another day
    assert body["workoutCount"] == 4
    assert body["curriculumVersion"] == 3
    body = await api.set_day(org, course, 1, is_rest=True)
    assert body["curriculum"][1] == {"dayOffset": 1, "isRest": True, "items": []}
    events = await outbox_events(db, "catalog.course.curriculum_changed.v1")
    assert [e.payload.curriculum_version for e in events] == [1, 2, 3, 4]
    last = events[-1].payload
    assert [(d.day_offset, d.is_rest, len(d.items)) for d in last.days] == [
        (0, False, 3),
        (1, True, 0),
        (2, False, 1),
    ]
    assert [str(i.workout_id) for i in last.days[0].items] == [b, a, b]
    item_ids = {i.item_id for d in last.days for i in d.items}
    assert len(item_ids) == 4  # one item per (day, workout) occurrence
    # Clearing a day (no workouts, not rest) removes it from the curriculum.
    body = await api.set_day(org, course, 2, [])
    assert body["curriculum"][2] == {"dayOffset": 2, "isRest": False, "items": []}


async def test_trainer_flow_set_day_bad_input(api: Api, db: Database) -> None:
    org = await api.create_org()
    other_org = await api.create_org("user_other")
    foreign = await api.create_workout(other_org, user="user_other")
    mine = await api.create_workout(org)
    course = await api.create_course(org, duration_days=3)
    path = f"/organizations/{org}/courses/{course}/days"
    before = await table_state(db)
    r = await api.request("POST", path, json={"dayOffset": 3, "workoutIds": [mine]})
    assert error_paths(problem(r, 422, "DAY_OFFSET_OUT_OF_RANGE")) == ["$.dayOffset"]
    r = await api.request("POST", path, json={"dayOffset": -1})
    assert error_paths(problem(r, 400, "VALIDATION_FAILED")) == ["$.dayOffset"]
    r = await api.request("POST", path, json={"dayOffset": 1.5})
    assert error_paths(problem(r, 400, "VALIDATION_FAILED")) == ["$.dayOffset"]
    r = await api.request("POST", path, json={"dayOffset": 0, "workoutIds": ["not-a-uuid"]})
    assert error_paths(problem(r, 400, "VALIDATION_FAILED")) == ["$.workoutIds[0]"]
    r = await api.request("POST", path, json={"dayOffset": 0, "workoutIds": [mine, foreign]})
    assert error_paths(problem(r, 422, "UNKNOWN_WORKOUT")) == ["$.workoutIds[1]"]
    r = await api.request("POST", path, json={"dayOffset": 0, "workoutIds": [mine], "isRest": True})
    assert error_paths(problem(r, 422, "REST_DAY_WITH_WORKOUTS")) == ["$.workoutIds"]
    r = await api.request("POST", path, json={"dayOffset": 0, "position": 2})
    problem(r, 400, "VALIDATION_FAILED")
    r = await api.request(
        "POST", path, content=b"{not json", headers={"content-type": "application/json"}
    )
    problem(r, 400, "MALFORMED_JSON")
    r = await api.request(
        "POST", f"/organizations/{org}/courses", json={"name": "X", "durationDays": 0}
    )
    assert error_paths(problem(r, 400, "VALIDATION_FAILED")) == ["$.durationDays"]
    r = await api.request(
        "PATCH", f"/organizations/{org}/courses/{course}", json={"previewType": "everything"}
    )
    assert error_paths(problem(r, 400, "VALIDATION_FAILED")) == ["$.previewType"]
    assert await table_state(db) == before


async def test_trainer_flow_staff_list_and_get_include_drafts(api: Api) -> None:
    org, published, workout = await api.published_course()
    draft = await api.create_course(org)
    r = await api.request("GET", f"/organizations/{org}/courses")
    assert r.status_code == 200
    by_id = {c["id"]: c for c in r.json()}
    assert (by_id[published]["status"], by_id[draft]["status"]) == ("published", "draft")
    assert by_id[published]["curriculum"][0]["items"][0]["workoutId"] == workout
    assert by_id[published]["curriculum"][0]["items"][0]["title"] == "Mobility"
