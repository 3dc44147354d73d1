"""Outgoing webhooks through the gateway, received by the receiver the documentation gives
(``docs/examples/webhook_receiver.py``, run as its own process), which verifies every
signature with the ``standardwebhooks`` library: an organization registers an endpoint, a
buyer's purchase and a staff revoke reach it signed, a test event and a replay arrive with the
ids the API named, an address inside the network is refused, another organization sees none
of it.

Deliveries are asynchronous by nature (a webhook goes out after the write that caused it has
committed), so waiting for the receiver to print one is the only wait here; every API call is
made once, back to back."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from suite import Course, Suite, ok, problem

from coursemesh.devstack.ports import free_port

pytestmark = pytest.mark.e2e

RECEIVER = Path(__file__).resolve().parents[1] / "docs" / "examples" / "webhook_receiver.py"
DELIVERY_DEADLINE = 30.0


class Receiver:
    """The documented receiver in its own process; what it prints, line by line."""

    def __init__(self, secret: str, port: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(RECEIVER), "--secret", secret, "--port", str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()
        listening = self.next(lambda line: "listening" in line)
        assert listening["listening"] == port

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def next(self, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The next printed line ``wanted`` accepts (earlier lines kept in ``seen``). The
        delivery is asynchronous by nature: it leaves after the write's commit."""
        deadline = time.monotonic() + DELIVERY_DEADLINE
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"nothing wanted received; seen: {self.seen}"
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(line)
            if wanted(line):
                return line

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


@pytest.fixture
def endpoint(suite: Suite, free_course: Course) -> Iterator[tuple[dict[str, Any], Receiver]]:
    port = free_port()
    created = ok(
        free_course.owner.post(
            f"/organizations/{free_course.org_id}/webhook-endpoints",
            {
                "url": f"http://127.0.0.1:{port}/hooks",
                "eventTypes": ["enrollment.activated", "enrollment.revoked"],
            },
        ),
        201,
    )
    assert created["secret"].startswith("whsec_")
    receiver = Receiver(created["secret"], port)
    try:
        yield created, receiver
    finally:
        receiver.stop()


def _types(receiver: Receiver) -> set[Any]:
    return {line.get("type") for line in receiver.seen}


def of_type(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda line: line.get("type") == kind


def test_a_purchase_and_a_revoke_reach_the_sellers_endpoint_signed(
    suite: Suite, free_course: Course, endpoint: tuple[dict[str, Any], Receiver]
) -> None:
    created, receiver = endpoint
    buyer = suite.user("hooked")
    entitlement_id = suite.checkout(buyer, free_course)["entitlementId"]
    revoked = free_course.owner.post(
        f"/organizations/{free_course.org_id}/entitlements/{entitlement_id}/revoke",
        {"reason": "chargeback"},
    )
    ok(revoked)

    # Webhooks promise no order (two senders may deliver them at once): wait for both.
    receiver.next(lambda _line: {"enrollment.activated", "enrollment.revoked"} <= _types(receiver))
    by_type = {line.get("type"): line for line in receiver.seen}
    activated, revoke = by_type["enrollment.activated"], by_type["enrollment.revoked"]
    assert activated["data"]["entitlementId"] == entitlement_id
    assert activated["data"]["userId"] == buyer.sub
    assert activated["data"]["courseId"] == free_course.course_id
    assert revoke["data"]["entitlementId"] == entitlement_id
    assert revoke["data"]["reason"] == "chargeback"
    assert activated["webhookId"] != revoke["webhookId"]

    log = ok(
        free_course.owner.get(
            f"/organizations/{free_course.org_id}/webhook-endpoints/{created['id']}/deliveries"
        )
    )
    by_id = {d["webhookId"]: d for d in log["items"]}
    for line in (activated, revoke):
        delivery = by_id[line["webhookId"]]
        assert delivery["eventType"] == line["type"]
        # the receiver printed it before answering; the log records the answer just after
        assert delivery["status"] in {"pending", "delivered"}


def test_a_test_event_and_a_replay_arrive_with_the_ids_the_api_named(
    free_course: Course, endpoint: tuple[dict[str, Any], Receiver]
) -> None:
    created, receiver = endpoint
    base = f"/organizations/{free_course.org_id}/webhook-endpoints/{created['id']}"
    sent = ok(free_course.owner.post(f"{base}/test"), 202)
    first = receiver.next(lambda line: line.get("webhookId") == sent["webhookId"])
    assert (first["type"], first["duplicate"]) == ("webhook.test", False)

    replayed = free_course.owner.post(f"{base}/deliveries/{sent['deliveryId']}/replay")
    ok(replayed, 202)
    again = receiver.next(lambda line: line.get("webhookId") == sent["webhookId"])
    assert (again["type"], again["duplicate"]) == ("webhook.test", True)
    assert again["data"] == first["data"]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "http://10.1.2.3/hooks",  # a private network
        "https://[fd00:ec2::254]/",  # the metadata service over IPv6
        "http://0.0.0.0:8080/",
    ],
)
def test_an_address_inside_the_network_is_refused(free_course: Course, url: str) -> None:
    path = f"/organizations/{free_course.org_id}/webhook-endpoints"
    before = ok(free_course.owner.get(path))["total"]
    refused = free_course.owner.post(path, {"url": url, "eventTypes": ["enrollment.activated"]})
    problem(refused, 422, "ENDPOINT_ADDRESS_FORBIDDEN")
    assert ok(free_course.owner.get(path))["total"] == before


def test_another_organization_sees_none_of_it(
    suite: Suite, free_course: Course, endpoint: tuple[dict[str, Any], Receiver]
) -> None:
    created, _receiver = endpoint
    other_owner = suite.user("other-owner")
    other_org, _name, _slug = suite.organization(other_owner, "Other Studio")
    mine = f"/organizations/{free_course.org_id}/webhook-endpoints/{created['id']}"
    # the other owner, on this organization's paths: not staff here
    problem(other_owner.get(mine), 404)
    # and this organization's endpoint asked for under the other organization's id
    theirs = f"/organizations/{other_org}/webhook-endpoints/{created['id']}"
    problem(other_owner.get(theirs), 404, "WEBHOOK_ENDPOINT_NOT_FOUND")
    problem(other_owner.get(f"{theirs}/deliveries"), 404, "WEBHOOK_ENDPOINT_NOT_FOUND")
    problem(other_owner.post(f"{theirs}/test"), 404, "WEBHOOK_ENDPOINT_NOT_FOUND")
    listed = ok(other_owner.get(f"/organizations/{other_org}/webhook-endpoints"))
    assert listed["items"] == []
    problem(suite.anon.get(mine), 401)
