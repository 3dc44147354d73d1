"""Staff grants through the gateway, back to back and without a retry: the user a course is
granted to plays it at their next call (learning reads ``commerce.entitlement.changed.v2``; a
"no" is caught up before it is answered), loses it once a staff revoke's consistency token
reaches learning with their call, and both steps are in their access history."""

from __future__ import annotations

from typing import Any

import pytest
from suite import Course, Suite, eventually, ok, problem, token_of

pytestmark = pytest.mark.e2e


def test_a_granted_course_plays_at_once_and_a_revoke_ends_it(
    suite: Suite, paid_course: Course
) -> None:
    guest = suite.user("granted")
    granted = ok(
        paid_course.owner.post(
            f"/organizations/{paid_course.org_id}/courses/{paid_course.course_id}/grants",
            {"userId": guest.sub, "reason": "podcast giveaway"},
        ),
        201,
    )
    assert (granted["status"], granted["sourcePaymentTransactionId"]) == ("active", None)
    view = suite.player(guest, paid_course)
    assert view["entitlement"]["status"] == "active"

    revoke = paid_course.owner.post(
        f"/organizations/{paid_course.org_id}/entitlements/{granted['entitlementId']}/revoke",
        {"reason": "giveaway ended"},
    )
    assert ok(revoke)["status"] == "revoked"
    # another client's write: the guest reads it at once with the write's consistency token
    problem(
        guest.get(f"/me/courses/{paid_course.course_id}", headers=token_of(revoke)),
        403,
        "ENTITLEMENT_REVOKED",
    )
    history = ok(guest.get(f"/me/courses/{paid_course.course_id}/history"))
    assert [(e["cause"], e["actorType"], e["actor"]) for e in history["items"]] == [
        ("staff_granted", "staff", None),
        ("staff_revoked", "staff", None),
    ]


def test_only_staff_grant(suite: Suite, paid_course: Course) -> None:
    stranger = suite.user("grant-stranger")
    problem(
        stranger.post(
            f"/organizations/{paid_course.org_id}/courses/{paid_course.course_id}/grants",
            {"userId": stranger.sub, "reason": "free for me"},
        ),
        404,
        "NOT_FOUND",
    )
    problem(stranger.get(f"/me/courses/{paid_course.course_id}"), 404)


def test_a_cohort_from_a_csv_file_plays_at_once(suite: Suite, paid_course: Course) -> None:
    cohort = [suite.user(f"cohort-{i}") for i in range(3)]
    url = f"/organizations/{paid_course.org_id}/courses/{paid_course.course_id}/grants/bulk"
    csv = "userId\n" + "".join(f"{u.sub}\n" for u in cohort)
    headers = {"content-type": "text/csv"}
    dry = ok(
        paid_course.owner.post(
            url, content=csv, params={"dryRun": "true", "reason": "cohort"}, headers=headers
        )
    )
    assert dry["counts"]["granted"] == 3
    problem(cohort[0].get(f"/me/courses/{paid_course.course_id}"), 404)
    done = ok(
        paid_course.owner.post(url, content=csv, params={"reason": "cohort"}, headers=headers)
    )
    assert [r["outcome"] for r in done["rows"]] == ["granted"] * 3
    for user in cohort:
        assert suite.player(user, paid_course)["entitlement"]["status"] == "active"


def test_a_large_file_in_the_background_shows_its_progress(
    suite: Suite, paid_course: Course
) -> None:
    cohort = [suite.user(f"job-{i}") for i in range(5)]
    url = f"/organizations/{paid_course.org_id}/courses/{paid_course.course_id}/grants/bulk/jobs"
    csv = "userId\n" + "".join(f"{u.sub}\n" for u in cohort)
    started = paid_course.owner.post(
        url, content=csv, params={"reason": "cohort"}, headers={"content-type": "text/csv"}
    )
    job = ok(started, 202)
    assert (job["total"], job["processed"], job["percent"]) == (5, 0, 0)
    location = started.headers["location"]
    assert location.endswith(f"/grants/bulk/jobs/{job['jobId']}")

    def finished() -> dict[str, Any]:
        body = ok(paid_course.owner.get(location))
        assert body["status"] == "done"
        return body

    done = eventually(
        finished,
        why="the job runs in commerce's background worker, after the upload's answer",
        what="the bulk grant job done",
    )
    assert (done["processed"], done["percent"], done["counts"]["granted"]) == (5, 100, 5)
    for user in cohort:
        assert suite.player(user, paid_course)["entitlement"]["status"] == "active"
