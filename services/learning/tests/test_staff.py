"""The staff's per-buyer drill-down of a course: JSON pages and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from coursemesh.chassis.testing import TestIdentity
from coursemesh.contracts import examples

COURSE, ORG = str(examples.COURSE), str(examples.ORG)
URL = f"/organizations/{ORG}/courses/{COURSE}/enrollments"
TRAINER = "user_trainer"


async def enroll_three(client: Any, world: Any, identity: TestIdentity, clock: Any) -> None:
    """ann: 2 items done; bob: started, nothing done; cat: never opened; dan: pending."""
    await world.course()
    await world.member(TRAINER, "trainer")
    for user in ("user_ann", "user_bob", "user_cat"):
        await world.entitle(user_id=user)
    await world.entitle(user_id="user_dan", status="pending")
    ann = identity.headers("user_ann")
    await client.post(f"/me/courses/{COURSE}/start", json={"startDate": "2025-03-01"}, headers=ann)
    clock.now = datetime(2025, 3, 3, 11, 0, tzinfo=UTC)
    for workout in (examples.WORKOUT_A, examples.WORKOUT_B):
        await client.post(f"/me/courses/{COURSE}/workouts/{workout}/complete", headers=ann)
    clock.now = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
    await client.post(f"/me/courses/{COURSE}/start", headers=identity.headers("user_bob"))


async def test_staff_drill_down_lists_active_entitlements_with_progress(
    client: Any, world: Any, identity: TestIdentity, clock: Any
) -> None:
    await enroll_three(client, world, identity, clock)

    response = await client.get(URL, headers=identity.headers(TRAINER))

    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 3  # the pending buyer is not enrolled yet
    by_user = {r["userId"]: r for r in body["items"]}
    assert [r["userId"] for r in body["items"]] == ["user_bob", "user_ann", "user_cat"]
    ann = by_user["user_ann"]
    assert (ann["completedCount"], ann["totalCount"], ann["currentDayOffset"]) == (2, 3, 2)
    assert ann["lastActivityAt"] == "2025-03-03T11:00:00Z"
    assert (by_user["user_cat"]["startDate"], by_user["user_cat"]["completedCount"]) == (None, 0)


async def test_staff_drill_down_pages_and_sorts(
    client: Any, world: Any, identity: TestIdentity, clock: Any
) -> None:
    await enroll_three(client, world, identity, clock)
    headers = identity.headers(TRAINER)
    first = await client.get(URL, params={"sort": "-completedCount", "limit": 2}, headers=headers)
    second = await client.get(
        URL, params={"sort": "-completedCount", "limit": 2, "offset": 2}, headers=headers
    )
    by_user = await client.get(URL, params={"sort": "userId"}, headers=headers)
    assert first.json()["items"][0]["userId"] == "user_ann"
    assert len(first.json()["items"]) == 2
    assert len(second.json()["items"]) == 1
    seen = {r["userId"] for r in first.json()["items"] + second.json()["items"]}
    assert seen == {"user_ann", "user_bob", "user_cat"}
    assert [r["userId"] for r in by_user.json()["items"]] == ["user_ann", "user_bob", "user_cat"]


async def test_staff_drill_down_csv_exports_the_same_rows(
    client: Any, world: Any, identity: TestIdentity, clock: Any
) -> None:
    await enroll_three(client, world, identity, clock)
    headers = identity.headers(TRAINER)
    as_json = (await client.get(URL, params={"sort": "userId"}, headers=headers)).json()
    response = await client.get(URL, params={"sort": "userId", "format": "csv"}, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"  # one charset
    records = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["userId"] for r in records] == [r["userId"] for r in as_json["items"]]
    assert records[0]["completedCount"] == "2"
    assert records[0]["startDate"] == "2025-03-01"


async def test_drill_down_is_404_for_non_staff_and_other_orgs(
    client: Any, world: Any, identity: TestIdentity, clock: Any
) -> None:
    await enroll_three(client, world, identity, clock)
    await world.member("user_member", "member")
    await world.member("user_former", "admin", version=1)
    await world.member("user_former", None, version=2)
    for user in ("user_member", "user_former", "user_ann", "user_stranger"):
        response = await client.get(URL, headers=identity.headers(user))
        assert (response.status_code, response.json()["code"]) == (404, "COURSE_NOT_FOUND"), user
    other_org = f"/organizations/{examples.OFFER}/courses/{COURSE}/enrollments"
    response = await client.get(other_org, headers=identity.headers(TRAINER))
    assert (response.status_code, response.json()["code"]) == (404, "COURSE_NOT_FOUND")


async def test_drill_down_bad_query_is_400(
    client: Any, world: Any, identity: TestIdentity, clock: Any
) -> None:
    await enroll_three(client, world, identity, clock)
    headers = identity.headers(TRAINER)
    for params in (
        {"sort": "price"},
        {"limit": 0},
        {"limit": 1000},
        {"offset": -1},
        {"format": "xml"},
    ):
        response = await client.get(URL, params=params, headers=headers)
        assert (response.status_code, response.json()["code"]) == (400, "VALIDATION_FAILED"), params
    response = await client.get(URL)
    assert (response.status_code, response.json()["code"]) == (401, "MISSING_TOKEN")
