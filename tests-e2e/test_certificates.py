"""A course certificate, end to end through the gateway: a buyer takes a free course, completes
every item, downloads the certificate, anyone verifies it by its link; the organization revokes
the buyer's access and the link says so.

Calls follow each other back to back (docs/consistency.md); the anonymous check after the
revocation carries the revocation's Consistency-Token, as another client would.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pypdf
import pytest
from suite import Suite, ok, problem, token_of

pytestmark = pytest.mark.e2e


def test_a_completed_course_gives_a_certificate_anyone_can_verify_until_it_is_revoked(
    suite: Suite,
) -> None:
    course = suite.course(price_cents=0, name="Certified reset")
    buyer = suite.user("ann-learner")  # the token's name claim: "Ann-Learner"
    entitlement_id = suite.checkout(buyer, course)["entitlementId"]
    player = f"/me/courses/{course.course_id}"
    before = suite.player(buyer, course)
    assert before["certificateId"] is None
    problem(buyer.get(f"{player}/certificate"), 404, "CERTIFICATE_NOT_FOUND")

    items = [(i["workoutId"], d["dayOffset"]) for d in before["days"] for i in d["items"]]
    for workout_id, day in items:
        ok(buyer.post(f"{player}/workouts/{workout_id}/complete", {"dayOffset": day}))
    after = suite.player(buyer, course)
    certificate_id = after["certificateId"]
    assert after["entitlement"]["completedAt"] is not None
    assert certificate_id

    download = buyer.get(f"{player}/certificate")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/pdf"
    text = pypdf.PdfReader(io.BytesIO(download.content)).pages[0].extract_text()
    # No zone was given: the learner's day of the completion is UTC's.
    today = datetime.fromisoformat(after["entitlement"]["completedAt"]).astimezone(UTC)
    today = today.date().isoformat()
    for printed in (buyer.name, course.name, course.org_name, today):
        assert printed in text, printed
    stored = suite.s3().get_object(
        Bucket="coursemesh-certificates", Key=f"certificates/{certificate_id}.pdf"
    )
    assert stored["Body"].read() == download.content

    public = ok(suite.anon.get(f"/public/certificates/{certificate_id}"))
    assert public == {
        "certificateId": certificate_id,
        "learnerName": buyer.name,
        "courseName": course.name,
        "organizationName": course.org_name,
        "organizationLogoUrl": f"https://cdn.example.com/{course.org_slug}.png",
        "completedOn": today,
        "status": "valid",
    }
    assert buyer.sub not in str(public)
    assert buyer.email not in str(public)

    revoked = course.owner.post(
        f"/organizations/{course.org_id}/entitlements/{entitlement_id}/revoke",
        {"reason": "Refunded on request"},
    )
    ok(revoked)
    checked = ok(
        suite.anon.get(f"/public/certificates/{certificate_id}", headers=token_of(revoked))
    )
    assert checked["status"] == "revoked"
    problem(buyer.get(f"{player}/certificate"), 403, "ENTITLEMENT_REVOKED")
    problem(suite.anon.get("/public/certificates/not-a-certificate"), 404, "CERTIFICATE_NOT_FOUND")
