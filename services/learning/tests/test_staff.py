"""The staff's per-buyer drill-down of a course: JSON pages and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

from coursemesh.chassis.testing import TestIdentity
from coursemesh.contracts import examples

COURSE, ORG = str(examples.COURSE), str(examples.ORG)
URL = f"/organizations/{ORG}/courses/{COURSE}/enrollments"
SUMMARY = f"/organizations/{ORG}/courses/{COURSE}/summary"
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


async def enroll_eve(client: Any, world: Any, identity: TestIdentity, clock: Any) -> None:
    """eve: started 03-01, day 0 done on 03-01 and day 2 on 03-03: every day kept."""
    eve = identity.headers("user_eve")
    await world.entitle(user_id="user_eve")
    clock.now = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    await client.post(f"/me/courses/{COURSE}/start", json={"startDate": "2025-03-01"}, headers=eve)
    for workout in (examples.WORKOUT_A, examples.WORKOUT_B):
        await client.post(f"/me/courses/{COURSE}/workouts/{workout}/complete", headers=eve)
    clock.now = datetime(2025, 3, 3, 12, 30, tzinfo=UTC)
    await client.post(f"/me/courses/{COURSE}/workouts/{examples.WORKOUT_A}/complete", headers=eve)


async def test_staff_drill_down_shows_and_sorts_adherence(
    client: Any, world: Any, identity: TestIdentity, clock: Any
) -> None:
    """On 03-03 (day 2 for ann and eve): eve did all 3 due items on their days (100 %, streaks
    2/2); ann did day 0's two on 03-03, late (2 of 3: 66 %, 0/0); bob started today and has
    day 0's two due (0 %); cat never started (null, last whichever the direction)."""
    await enroll_three(client, world, identity, clock)
    await enroll_eve(client, world, identity, clock)
    headers = identity.headers(TRAINER)

    async def rows(**params: Any) -> list[Any]:
        response = await client.get(URL, params=params, headers=headers)
        assert response.status_code == 200
        assert response.json()["total"] == 4
        return [
            (r["userId"], r["adherencePercent"], r["currentStreak"], r["longestStreak"])
            for r in response.json()["items"]
        ]

    assert await rows(sort="-adherencePercent") == [
        ("user_eve", 100, 2, 2),
        ("user_ann", 66, 0, 0),
        ("user_bob", 0, 0, 0),
        ("user_cat", None, 0, 0),
    ]
    assert [r[0] for r in await rows(sort="adherencePercent")] == [
        "user_bob",
        "user_ann",
        "user_eve",
        "user_cat",
    ]
    assert [r[0] for r in await rows(sort="-adherencePercent", limit=2, offset=1)] == [
        "user_ann",
        "user_bob",
    ]
    assert (await rows(sort="-currentStreak"))[0][0] == "user_eve"
    assert (await rows(sort="-longestStreak", limit=1))[0][0] == "user_eve"


async def test_staff_drill_down_csv_has_the_adherence_columns(
    client: Any, world: Any, identity: TestIdentity, clock: Any
) -> None:
    await enroll_three(client, world, identity, clock)
    await enroll_eve(client, world, identity, clock)
    response = await client.get(
        URL,
        params={"sort": "-adherencePercent", "format": "csv"},
        headers=identity.headers(TRAINER),
    )
    assert response.status_code == 200
    header, *lines = csv.reader(io.StringIO(response.text))
    assert header[-3:] == ["adherencePercent", "currentStreak", "longestStreak"]
    assert [(line[1], *line[-3:]) for line in lines] == [
        ("user_eve", "100", "2", "2"),
        ("user_ann", "66", "0", "0"),
        ("user_bob", "0", "0", "0"),
        ("user_cat", "", "0", "0"),
    ]


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


async def test_the_summary_counts_the_buyers_and_the_median_adherence(
    client: Any, world: Any, identity: TestIdentity, clock: Any
) -> None:
    """ann, bob and eve started and were active on 03-01..03-03, cat never started; eve
    completed the course. Percents 100 (eve), 66 (ann), 0 (bob): median 66."""
    await enroll_three(client, world, identity, clock)
    await enroll_eve(client, world, identity, clock)
    response = await client.get(SUMMARY, headers=identity.headers(TRAINER))
    assert response.status_code == 200
    assert response.json() == {
        "enrolled": 4,
        "started": 3,
        "activeLast7Days": 3,
        "completed": 1,
        "medianAdherencePercent": 66,
    }
    clock.now = datetime(2025, 3, 10, 12, 31, tzinfo=UTC)  # a week after eve's last completion
    later = (await client.get(SUMMARY, headers=identity.headers(TRAINER))).json()
    assert later["activeLast7Days"] == 0


async def test_the_summary_chart_is_svg_with_the_course_name_escaped(
    client: Any, world: Any, identity: TestIdentity
) -> None:
    await world.course(name='Reset <script>alert("x")</script> & co')
    await world.member(TRAINER, "trainer")
    await world.entitle(user_id="user_ann")
    response = await client.get(f"{SUMMARY}.svg", headers=identity.headers(TRAINER))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    chart = ElementTree.fromstring(response.text)  # well-formed XML
    assert chart.tag == "{http://www.w3.org/2000/svg}svg"
    assert "<script>" not in response.text
    assert "Reset &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in response.text
    assert "n/a" in response.text  # nobody has anything due: no median


async def test_the_summary_is_404_for_non_staff(
    client: Any, world: Any, identity: TestIdentity, clock: Any
) -> None:
    await enroll_three(client, world, identity, clock)
    for path in (SUMMARY, f"{SUMMARY}.svg"):
        response = await client.get(path, headers=identity.headers("user_ann"))
        assert (response.status_code, response.json()["code"]) == (404, "COURSE_NOT_FOUND")
