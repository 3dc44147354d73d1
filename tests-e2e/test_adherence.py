"""Adherence through the gateway: a buyer completes today's two workouts and sees the figures
move on the player; staff see the same figures on the drill-down, sorted, in its CSV, and in
the course's summary and its chart."""

from __future__ import annotations

import csv
import io

import pytest
from suite import Suite, ok

pytestmark = pytest.mark.e2e


def test_completing_two_items_shows_in_the_adherence_figures(suite: Suite) -> None:
    course = suite.course(price_cents=0, name="Steady reset")
    buyer = suite.user("steady")
    entitlement_id = suite.checkout(buyer, course)["entitlementId"]
    me = f"/me/courses/{course.course_id}"
    tz = {"X-Timezone": "Pacific/Auckland"}

    def figures() -> tuple[object, object, object]:
        view = suite.player(buyer, course, **tz)
        return (view["adherencePercent"], view["currentStreak"], view["longestStreak"])

    assert figures() == (None, 0, 0)  # not started: nothing is due
    ok(buyer.post(f"{me}/start", headers=tz))
    assert figures() == (0, 0, 0)  # day 0's two workouts are due, none done
    for workout in course.workout_ids:  # day 0: A and B
        ok(buyer.post(f"{me}/workouts/{workout}/complete", {"dayOffset": 0}, headers=tz))
    assert figures() == (100, 1, 1)  # today kept: it counts in the streak already

    staff_course = f"/organizations/{course.org_id}/courses/{course.course_id}"
    owner = course.owner
    page = ok(
        owner.get(f"{staff_course}/enrollments", params={"sort": "-adherencePercent"}, headers=tz)
    )
    (row,) = [r for r in page["items"] if r["entitlementId"] == entitlement_id]
    assert (row["adherencePercent"], row["currentStreak"], row["longestStreak"]) == (100, 1, 1)
    exported = owner.get(
        f"{staff_course}/enrollments",
        params={"sort": "-currentStreak", "format": "csv"},
        headers=tz,
    )
    assert exported.status_code == 200, exported.text
    records = list(csv.DictReader(io.StringIO(exported.text)))
    (line,) = [r for r in records if r["entitlementId"] == entitlement_id]
    assert (line["adherencePercent"], line["currentStreak"], line["longestStreak"]) == (
        "100",
        "1",
        "1",
    )
    summary = ok(owner.get(f"{staff_course}/summary", headers=tz))
    assert summary == {
        "enrolled": 1,
        "started": 1,
        "activeLast7Days": 1,
        "completed": 0,
        "medianAdherencePercent": 100,
    }
    chart = owner.get(f"{staff_course}/summary.svg", headers=tz)
    assert chart.status_code == 200, chart.text
    assert chart.headers["content-type"].startswith("image/svg+xml")
    assert chart.text.startswith("<svg")
    assert "Steady reset" in chart.text
