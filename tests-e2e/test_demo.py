"""``coursemesh demo`` against the running stack: what it creates is there for any client.

The demo is run in-process (the function the command calls), with the stack's own development
identity minting its tokens, then checked through the gateway with fresh clients only. Single
topology: the demo only drives the public API, which the journeys cover under both.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from suite import Suite, User, ok

from coursemesh.devstack.demo import COURSE_DAYS, ORG_NAME, PRICE_CENTS, run_demo, running_gateway

pytestmark = pytest.mark.e2e


def test_demo_creates_a_studio_a_sale_and_progress(suite: Suite) -> None:
    if suite.replicas != 1:
        pytest.skip("the demo runs once, on the single-instance topology")
    # the command finds the running stack from its data dir's stack.json
    assert running_gateway(Path(suite.data_dir)) == suite.base_url
    identity = suite.stack.identity
    steps: list[str] = []

    class Recorder:
        def step(self, message: str) -> None:
            pass

        def done(self, message: str) -> None:
            steps.append(message)

    result = run_demo(
        suite.base_url,
        lambda sub, email, name: identity.mint_token(sub, email=email, name=name),
        progress=Recorder(),
        custom_timeout=60,
    )
    assert len(steps) == 9, steps

    # the storefront shows the paid course, priced
    shown = suite.storefront(result.course_id)
    assert shown["durationDays"] == COURSE_DAYS
    assert shown["price"] == {"cents": PRICE_CENTS, "currency": "EUR"}
    assert shown["workoutCount"] == 13  # two on day 0, one a day, rest days 6 and 13
    assert suite.storefront(result.free_course_id)["price"]["cents"] == 0

    owner = User(result.owner_sub, "", "", suite._client(result.owner_token))
    buyer = User(result.buyer_sub, "", "", suite._client(result.buyer_token))
    org = ok(owner.get(f"/organizations/{result.org_id}"))
    assert org["name"] == ORG_NAME

    # the buyer's library holds both courses, the paid one with progress
    library = {c["courseId"] for c in ok(buyer.get("/me/courses"))["courses"]}
    assert {result.course_id, result.free_course_id} <= library
    view = ok(buyer.get(f"/me/courses/{result.course_id}"))
    assert view["entitlement"]["status"] == "active"
    assert view["entitlement"]["startDate"] is not None
    assert view["progress"] == {"completed": 3, "total": 13}
    assert len(view["completedItemIds"]) == 3

    # the payment is completed: the entitlement came from a payment, the page says so
    [entitlement] = [
        e
        for e in ok(
            owner.get(f"/organizations/{result.org_id}/courses/{result.course_id}/entitlements")
        )["items"]
        if e["userId"] == result.buyer_sub
    ]
    assert entitlement["entitlementId"] == result.entitlement_id
    assert entitlement["status"] == "active"
    assert entitlement["sourcePaymentTransactionId"] is not None
    success = suite.anon.get(urlsplit(result.success_url)._replace(scheme="", netloc="").geturl())
    assert success.status_code == 200
    assert "Payment confirmed" in success.text, success.text

    # staff see the buyer's progress
    enrollments = ok(
        owner.get(f"/organizations/{result.org_id}/courses/{result.course_id}/enrollments")
    )
    assert result.buyer_sub in str(enrollments)

    # the custom course is bought; its generation is asynchronous: ready, or still pending
    assert result.custom.status in ("ready", "pending"), result.custom
    assert result.custom.course_id is not None
    custom = ok(buyer.get(f"/me/custom-courses/{result.custom.course_id}"))
    assert custom["status"] != "failed", custom

    # a second run adds a second set for the same users, beside the first
    again = run_demo(
        suite.base_url,
        lambda sub, email, name: identity.mint_token(sub, email=email, name=name),
        custom_timeout=0,
    )
    assert again.org_id != result.org_id
    assert again.custom.status == "skipped"
    library = {c["courseId"] for c in ok(buyer.get("/me/courses"))["courses"]}
    assert {result.course_id, again.course_id, again.free_course_id} <= library
