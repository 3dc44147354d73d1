"""Offline sync through the gateway, as two devices of one buyer use it back to back: the first
sync right after a checkout, an offline batch sent three times, the other device catching up,
a sanity check, a second buyer's cursor, and a staff revoke removing the course."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from suite import Suite, ok, problem

pytestmark = pytest.mark.e2e


def checksum_of(document: dict[str, Any]) -> str:
    """The documented rule: MD5 of the canonical JSON (keys sorted, no whitespace, UTF-8) of
    the document without its checksum."""
    body = {k: v for k, v in document.items() if k != "checksum"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.md5(canonical.encode()).hexdigest()


def test_two_devices_converge_offline_progress_applies_once_and_a_revoke_removes(
    suite: Suite,
) -> None:
    course = suite.course(price_cents=0, name="Sync basics")
    buyer = suite.user("sync")
    entitlement_id = suite.checkout(buyer, course)["entitlementId"]

    first = ok(buyer.post("/me/sync", {}))  # device A, right after the checkout
    (document,) = first["courses"]
    assert document["courseId"] == course.course_id
    assert document["checksum"] == checksum_of(document)
    unchanged = ok(buyer.post("/me/sync", {"cursor": first["cursor"]}))
    assert unchanged == {
        "cursor": first["cursor"],
        "courses": [],
        "removed": [],
        "files": [],
        "more": False,
    }

    now = datetime.now(UTC).isoformat()
    batch = {
        "operations": [
            {"id": str(uuid.uuid4()), "type": "start", "courseId": course.course_id, "at": now},
            {
                "id": str(uuid.uuid4()),
                "type": "complete",
                "courseId": course.course_id,
                "workoutId": course.workout_ids[0],
                "dayOffset": 0,
                "at": now,
            },
        ]
    }
    sent = [ok(buyer.post("/me/sync/operations", batch)) for _ in range(3)]  # a flaky network
    assert [len(s["applied"]) for s in sent] == [2, 2, 2]  # the replays report the first outcome
    assert [s["rejected"] for s in sent] == [[], [], []]
    assert suite.player(buyer, course)["progress"]["completed"] == 1  # applied once

    device_b = ok(buyer.post("/me/sync", {"cursor": first["cursor"]}))
    device_a = ok(buyer.post("/me/sync", {"cursor": first["cursor"]}))
    assert device_a == device_b
    (synced,) = device_b["courses"]
    assert len(synced["state"]["completedItemIds"]) == 1
    sanity = ok(
        buyer.post(
            "/me/sync/sanity",
            {"counts": {"courses": 1}, "checksums": {course.course_id: synced["checksum"]}},
        )
    )
    assert sanity == {"ok": True, "refetch": [], "remove": [], "missing": []}

    stranger = suite.user("sync-other")
    problem(stranger.post("/me/sync", {"cursor": device_b["cursor"]}), 422, "SYNC_CURSOR_INVALID")

    revoked = course.owner.post(
        f"/organizations/{course.org_id}/entitlements/{entitlement_id}/revoke",
        {"reason": "chargeback"},
    )
    assert ok(revoked)["status"] == "revoked"
    after = ok(buyer.post("/me/sync", {"cursor": device_b["cursor"]}))
    assert (after["courses"], after["removed"]) == ([], [course.course_id])
    offline_after_revoke = ok(
        buyer.post(
            "/me/sync/operations",
            batch
            | {
                "operations": [
                    {
                        "id": str(uuid.uuid4()),
                        "type": "restart",
                        "courseId": course.course_id,
                        "at": now,
                    }
                ]
            },
        )
    )
    assert [r["code"] for r in offline_after_revoke["rejected"]] == ["ENTITLEMENT_REVOKED"]
