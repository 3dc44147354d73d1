"""Who may do what: staff of the course's org for course CRUD, curriculum,
publish and archive; members 403; outsiders and other orgs' ids 404; storefront anonymous."""

from __future__ import annotations

import uuid

import pytest

from coursemesh.catalog.testing import Api, problem, table_state
from coursemesh.chassis.db import Database


@pytest.mark.parametrize("role", ["owner", "admin", "trainer"])
async def test_permissions_course_crud_curriculum_publish_archive_need_staff_role(
    api: Api, role: str
) -> None:
    org = await api.create_org()
    user = f"user_{role}2"
    await api.add_member(org, user, role)
    workout = await api.create_workout(org, user=user)
    course = await api.create_course(org, user=user)
    await api.set_day(org, course, 0, [workout], user=user)
    await api.publish(org, course, user=user)
    r = await api.request("GET", f"/organizations/{org}/courses/{course}", user)
    assert r.status_code == 200
    r = await api.request("DELETE", f"/organizations/{org}/courses/{course}", user)
    assert r.status_code == 200


async def test_permissions_member_is_refused_403_and_nothing_changes(
    api: Api, db: Database
) -> None:
    org, course, workout = await api.published_course()
    await api.add_member(org, "user_member", "member")
    before = await table_state(db)
    base = f"/organizations/{org}/courses"
    calls = [
        ("POST", base, {"name": "X", "durationDays": 3}),
        ("GET", base, None),
        ("GET", f"{base}/{course}", None),
        ("PATCH", f"{base}/{course}", {"name": "X"}),
        ("POST", f"{base}/{course}/days", {"dayOffset": 0, "isRest": True}),
        ("POST", f"{base}/{course}/publish", None),
        ("DELETE", f"{base}/{course}", None),
        ("POST", f"/organizations/{org}/workouts", {"title": "X"}),
        ("GET", f"/organizations/{org}/workouts", None),
        ("PATCH", f"/organizations/{org}/workouts/{workout}", {"title": "X"}),
        ("DELETE", f"/organizations/{org}/workouts/{workout}", None),
    ]
    for method, path, body in calls:
        r = await api.request(method, path, "user_member", json=body)
        problem(r, 403, "STAFF_ROLE_REQUIRED")
    assert await table_state(db) == before


async def test_permissions_missing_or_invalid_token_is_401(api: Api, db: Database) -> None:
    org, course, _ = await api.published_course()
    before = await table_state(db)
    r = await api.request("POST", f"/organizations/{org}/courses/{course}/publish", None)
    problem(r, 401, "MISSING_TOKEN")
    r = await api.request(
        "DELETE",
        f"/organizations/{org}/courses/{course}",
        None,
        headers={"Authorization": "Bearer not-a-jwt"},
    )
    problem(r, 401, "INVALID_TOKEN")
    assert await table_state(db) == before


async def test_permissions_staff_of_org_a_gets_404_for_org_b_ids(api: Api, db: Database) -> None:
    org_a = await api.create_org("user_a")
    org_b, course_b, workout_b = await api.published_course()
    before = await table_state(db)
    # Org B's ids under org A's path: not found, whether they exist or not.
    for path in (
        f"/organizations/{org_a}/courses/{course_b}",
        f"/organizations/{org_a}/courses/{uuid.uuid4()}",
    ):
        problem(await api.request("GET", path, "user_a"), 404, "COURSE_NOT_FOUND")
        problem(await api.request("DELETE", path, "user_a"), 404, "COURSE_NOT_FOUND")
        r = await api.request("PATCH", path, "user_a", json={"name": "mine"})
        problem(r, 404, "COURSE_NOT_FOUND")
        problem(await api.request("POST", f"{path}/publish", "user_a"), 404, "COURSE_NOT_FOUND")
    r = await api.request("GET", f"/organizations/{org_a}/workouts/{workout_b}", "user_a")
    problem(r, 404, "WORKOUT_NOT_FOUND")
    r = await api.request("DELETE", f"/organizations/{org_a}/workouts/{workout_b}", "user_a")
    problem(r, 404, "WORKOUT_NOT_FOUND")
    # Org B's own paths: user_a is not a member, so the organization itself is not found.
    r = await api.request("GET", f"/organizations/{org_b}/courses/{course_b}", "user_a")
    problem(r, 404, "ORGANIZATION_NOT_FOUND")
    assert await table_state(db) == before


async def test_permissions_public_detail_is_anonymous(api: Api) -> None:
    _, course, _ = await api.published_course()
    r = await api.request("GET", f"/public/courses/{course}", None)
    # Anonymous callers reach the storefront logic (no 401): here it has no plan yet.
    problem(r, 404, "COURSE_NOT_PURCHASABLE")
