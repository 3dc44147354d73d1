"""A gifted course through the gateway with the sandbox provider: the payer buys the course for
a friend's address and pays on the hosted page; the friend is mailed a claim link, and claiming
it opens the course in the friend's player, never the payer's. A resend replaces the link. The
only waits are for the provider's webhook and the mail it leads to, later by nature."""

from __future__ import annotations

import re
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from suite import Course, Suite, User, eventually, ok, problem

pytestmark = pytest.mark.e2e


def claim_links(suite: Suite, friend: User, count: int) -> list[str]:
    """The claim links mailed to ``friend``, oldest first, once there are ``count`` of them."""

    def mailed() -> list[EmailMessage]:
        mails = [m for m in suite.mails_to(friend.email) if "gift" in str(m["Subject"]).lower()]
        assert len(mails) == count, [m["Subject"] for m in mails]
        return mails

    mails = eventually(
        mailed,
        why="the claim link is mailed after the provider's webhook, by the mail sender, later",
        what=f"{count} claim mail(s) to the recipient",
    )
    links = []
    for mail in mails:
        body = mail.get_body(("plain",))
        assert body is not None
        found = re.search(r"\S+/gifts/[A-Za-z0-9_-]+", str(body.get_content()))
        assert found is not None, body.get_content()
        links.append(found.group(0))
    return links


def token_of_link(suite: Suite, link: str) -> str:
    # the default template: the gateway's public address, where the client app serves the page
    assert link.startswith(f"{suite.base_url}/gifts/"), link
    return urlsplit(link).path.rsplit("/", 1)[1]


def test_a_gift_is_paid_mailed_and_claimed_by_its_recipient(
    suite: Suite, paid_course: Course
) -> None:
    payer, friend = suite.user("gift-payer"), suite.user("gift-friend")
    bought = ok(
        payer.post(
            f"/courses/{paid_course.course_id}/checkout", {"giftRecipientEmail": friend.email}
        ),
        201,
    )
    assert bought["entitlementId"] is None
    assert bought["giftId"]
    suite.pay(bought["paymentPageUrl"])
    [first] = claim_links(suite, friend, 1)

    # the payer sends the link again: a new one, and the first stops working
    ok(payer.post(f"/me/gifts/{bought['giftId']}/resend"))
    _, second = claim_links(suite, friend, 2)
    problem(friend.post(f"/gifts/{token_of_link(suite, first)}/claim"), 404, "GIFT_NOT_FOUND")
    token = token_of_link(suite, second)
    problem(payer.post(f"/gifts/{token}/claim"), 403, "GIFT_OWN_PURCHASE")
    problem(suite.anon.post(f"/gifts/{token}/claim"), 401)

    claimed = ok(friend.post(f"/gifts/{token}/claim"))
    assert claimed["entitlement"]["status"] == "active"
    assert claimed["entitlement"]["userId"] == friend.sub
    view = suite.player(friend, paid_course)
    assert view["entitlement"]["status"] == "active"
    history = ok(friend.get(f"/me/courses/{paid_course.course_id}/history"))
    assert [step["cause"] for step in history["items"]] == ["gift_claimed"]
    problem(friend.post(f"/gifts/{token}/claim"), 409, "GIFT_ALREADY_CLAIMED")
    # the payer paid and owns nothing by it
    problem(payer.get(f"/me/courses/{paid_course.course_id}/history"), 404)

    [gift] = ok(payer.get("/me/gifts"))["items"]
    assert (gift["giftId"], gift["status"], gift["sendCount"]) == (bought["giftId"], "claimed", 2)
    assert gift["claimedAt"]
    assert ok(friend.get("/me/gifts"))["items"] == []


def test_a_malformed_recipient_is_refused(suite: Suite, paid_course: Course) -> None:
    payer = suite.user("gift-typo")
    problem(
        payer.post(f"/courses/{paid_course.course_id}/checkout", {"giftRecipientEmail": "bob@"}),
        422,
        "GIFT_RECIPIENT_INVALID",
    )
    assert ok(payer.get("/me/gifts"))["items"] == []
