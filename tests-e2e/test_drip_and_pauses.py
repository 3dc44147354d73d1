"""Drip release and pauses through the gateway: the trainer releases a course day by day, the
buyer starts it, finds tomorrow locked, pauses and resumes; staff open every day for them."""

from __future__ import annotations

import pytest
from suite import Suite, ok, problem

pytestmark = pytest.mark.e2e


def test_daily_release_pause_resume_and_a_staff_unlock(suite: Suite) -> None:
    course = suite.course(price_cents=0, name="Daily reset")
    owner = course.owner
    staff_course = f"/organizations/{course.org_id}/courses/{course.course_id}"
    settings = ok(owner.patch(staff_course, {"releaseMode": "daily", "maxPauses": 3}))
    assert (settings["releaseMode"], settings["maxPauses"]) == ("daily", 3)
    buyer = suite.user("drip")
    entitlement_id = suite.checkout(buyer, course)["entitlementId"]
    me = f"/me/courses/{course.course_id}"
    tz = {"X-Timezone": "Europe/Berlin"}

    start = ok(buyer.post(f"{me}/start", headers=tz))
    view = suite.player(buyer, course, **tz)
    assert view["releaseMode"] == "daily"
    assert view["currentDayOffset"] == 0
    assert [d["locked"] for d in view["days"]] == [False, True, True]
    assert view["days"][0]["items"]  # today's workouts are shown
    assert view["days"][2]["items"] == []  # a locked day's are not
    assert view["days"][1]["opensOn"] > start["startDate"]
    later = course.workout_ids[0]  # on days 0 and 2
    refused = buyer.post(f"{me}/workouts/{later}/complete", {"dayOffset": 2}, headers=tz)
    problem(refused, 409, "DAY_LOCKED")

    paused = ok(buyer.post(f"{me}/pause", headers=tz))
    assert paused["paused"] is True
    problem(buyer.post(f"{me}/pause", headers=tz), 409, "ALREADY_PAUSED")
    assert suite.player(buyer, course, **tz)["paused"] is True
    resumed = ok(buyer.post(f"{me}/resume", headers=tz))
    assert (resumed["paused"], resumed["pausedDays"]) == (False, 0)  # resumed the same day
    assert [p["pausedBy"] for p in resumed["pauses"]] == [buyer.sub]

    one = f"{staff_course}/enrollments/{entitlement_id}"
    unlocked = ok(owner.post(f"{one}/unlock", {"reason": "travelling"}, headers=tz))
    assert unlocked["unlockedBy"] == owner.sub
    page = ok(owner.get(f"{staff_course}/enrollments"))
    (row,) = [r for r in page["items"] if r["entitlementId"] == entitlement_id]
    assert (row["unlockReason"], len(row["pauses"])) == ("travelling", 1)
    view = suite.player(buyer, course, **tz)
    assert [d["locked"] for d in view["days"]] == [False, False, False]
    ok(buyer.post(f"{me}/workouts/{later}/complete", {"dayOffset": 2}, headers=tz))
