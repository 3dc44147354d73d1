"""Reminder e-mails through the gateway: a learner opts in for a free course, the daily mail of
the day's workouts arrives with its one-click unsubscribe link, and the link (anonymous, through
the gateway) turns the reminders off; a forged link and another learner's course are refused.
The only wait is for the mail, which the reminder worker sends on its own schedule."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from suite import Course, Suite, eventually, ok, problem

pytestmark = pytest.mark.e2e


def test_opt_in_daily_mail_and_one_click_unsubscribe_through_the_gateway(
    suite: Suite, free_course: Course
) -> None:
    buyer = suite.user("reminded")
    suite.checkout(buyer, free_course)
    suite.player(buyer, free_course)
    path = f"/me/courses/{free_course.course_id}/reminders"
    # day 0 (workouts A and B) is today in UTC, and 00:00 UTC has passed: the mail is due now
    ok(buyer.post(f"/me/courses/{free_course.course_id}/start?tz=UTC", {}))
    stored = ok(buyer.put(path, {"enabled": True, "localTime": "00:00", "timeZone": "UTC"}))
    assert stored == {
        "enabled": True,
        "localTime": "00:00",
        "timeZone": "UTC",
        "email": buyer.email,
    }
    assert ok(buyer.get(path)) == stored

    def mailed() -> EmailMessage:
        mails = [m for m in suite.mails_to(buyer.email) if "workouts" in str(m["Subject"])]
        assert len(mails) == 1, [m["Subject"] for m in suite.mails_to(buyer.email)]
        return mails[0]

    mail = eventually(
        mailed,
        why="the reminder worker queues and sends on its own interval, not on the request",
        what="the daily reminder mail",
    )
    assert mail["Subject"] == "Free reset: today's workouts (day 1)"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = str(mail["List-Unsubscribe"]).strip("<>")
    assert link.startswith(f"{suite.base_url}/public/reminders/unsubscribe?token="), link

    # a mail scanner following the link changes nothing; the one-click POST turns it off
    assert ok(suite.anon.get(link)) == {"enabled": True}
    clicked = suite.anon.post(
        link,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert ok(clicked) == {"enabled": False}
    assert ok(buyer.get(path))["enabled"] is False

    problem(
        suite.anon.post("/public/reminders/unsubscribe?token=forged.token"),
        400,
        "INVALID_UNSUBSCRIBE_TOKEN",
    )
    problem(suite.anon.post("/public/reminders/unsubscribe"), 400, "VALIDATION_FAILED")
    stranger = suite.user("stranger")
    refused = stranger.put(path, {"enabled": True, "localTime": "09:00", "timeZone": "UTC"})
    problem(refused, 404, "COURSE_NOT_OWNED")
    # one mail for the day, whichever replica's worker sent it
    assert len([m for m in suite.mails_to(buyer.email) if "workouts" in str(m["Subject"])]) == 1
