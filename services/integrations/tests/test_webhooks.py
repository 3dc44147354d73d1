"""Webhook endpoints and deliveries against real PostgreSQL and a real HTTP receiver that
verifies every signature with the ``standardwebhooks`` library. Events are applied through the
real inbox and handlers; the service's own sender delivers them (waited for with a deadline:
delivery is asynchronous by nature)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from integrations_support import (
    ORG,
    OTHER_ORG,
    OTHER_OWNER,
    OWNER,
    Receiver,
    World,
    entitlement,
    serve,
)
from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook

from coursemesh.chassis.testing import TestIdentity, deliver, wait_for
from coursemesh.contracts import envelope
from coursemesh.devstack.ports import free_port
from coursemesh.integrations.events.handlers import subscriptions

Client = AsyncTestClient[Any]
BASE = f"/organizations/{ORG}/webhook-endpoints"


async def register(
    client: Client, identity: TestIdentity, receiver: Receiver, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        BASE,
        json={"url": receiver.url, "eventTypes": ["enrollment.activated"], **body},
        headers=identity.headers(OWNER),
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    receiver.secrets.append(created["secret"])
    return created


async def received(receiver: Receiver, count: int) -> None:
    async def enough() -> bool:
        return len(receiver.ids()) >= count

    await wait_for(enough, timeout=15, message=f"{count} requests received")


async def delivery_log(
    client: Client, identity: TestIdentity, endpoint_id: str, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{BASE}/{endpoint_id}/deliveries", params=params, headers=identity.headers(OWNER)
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def settled(client: Client, identity: TestIdentity, endpoint_id: str) -> None:
    async def none_pending() -> bool:
        return not await delivery_log(client, identity, endpoint_id, status="pending")

    await wait_for(none_pending, timeout=15, message="no pending delivery")


async def test_an_event_reaches_the_endpoint_signed_once_per_id(
    client: Client, identity: TestIdentity, receiver: Receiver, world: World
) -> None:
    endpoint = await register(client, identity, receiver)
    assert endpoint["secret"].startswith("whsec_")
    payload = entitlement()
    env = envelope(payload, aggregate_id=payload.entitlement_id, aggregate_version=1)
    await world.event(entitlement("pending"), uuid.uuid4())  # pending: no public event
    for _ in range(2):  # a redelivered event makes no second delivery
        await deliver(world.db, subscriptions(), env)
    await received(receiver, 1)
    await settled(client, identity, endpoint["id"])

    (got,) = receiver.received
    assert got.verified is not None, "signature did not verify"
    assert got.verified["type"] == "enrollment.activated"
    assert got.verified["data"]["entitlementId"] == str(payload.entitlement_id)
    assert got.verified["data"]["organizationId"] == str(ORG)
    assert abs(int(got.headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60
    (logged,) = await delivery_log(client, identity, endpoint["id"])
    assert (logged["webhookId"], logged["status"], logged["attempts"]) == (
        got.webhook_id,
        "delivered",
        1,
    )
    assert logged["lastResponseStatus"] == 204


async def test_a_failed_attempt_is_retried_with_the_same_id(
    client: Client, identity: TestIdentity, receiver: Receiver, world: World
) -> None:
    receiver.answers = [(500, {}), (302, {"location": "http://169.254.169.254/"})]
    endpoint = await register(client, identity, receiver)
    await world.event(entitlement(), uuid.uuid4())
    await received(receiver, 3)
    await settled(client, identity, endpoint["id"])

    assert len(set(receiver.ids())) == 1  # one delivery, tried three times
    assert all(r.verified is not None for r in receiver.received)
    (logged,) = await delivery_log(client, identity, endpoint["id"])
    assert (logged["status"], logged["attempts"]) == ("delivered", 3)
    detail = await client.get(
        f"{BASE}/{endpoint['id']}/deliveries/{logged['id']}", headers=identity.headers(OWNER)
    )
    attempts = detail.json()["attempts"]
    assert [a["responseStatus"] for a in attempts] == [500, 302, 204]
    assert "not followed" in attempts[1]["error"]  # the redirect was not followed


async def test_410_disables_the_endpoint(
    client: Client, identity: TestIdentity, receiver: Receiver, world: World
) -> None:
    receiver.answers = [(410, {})]
    endpoint = await register(client, identity, receiver)
    await world.event(entitlement(), uuid.uuid4())
    await received(receiver, 1)

    async def disabled() -> bool:
        got = await client.get(f"{BASE}/{endpoint['id']}", headers=identity.headers(OWNER))
        return got.json()["enabled"] is False

    await wait_for(disabled, timeout=15, message="endpoint disabled")
    got = (await client.get(f"{BASE}/{endpoint['id']}", headers=identity.headers(OWNER))).json()
    assert "410" in got["disabledReason"]
    await world.event(entitlement(), uuid.uuid4())  # a disabled endpoint gets nothing new
    assert len(await delivery_log(client, identity, endpoint["id"])) == 1


async def test_429_is_retried_later(
    client: Client, identity: TestIdentity, receiver: Receiver, world: World
) -> None:
    receiver.answers = [(429, {"retry-after": "30"})]
    endpoint = await register(client, identity, receiver)
    await world.event(entitlement(), uuid.uuid4())
    await received(receiver, 2)
    await settled(client, identity, endpoint["id"])
    (logged,) = await delivery_log(client, identity, endpoint["id"])
    assert (logged["status"], logged["attempts"]) == ("delivered", 2)


async def test_rotation_signs_with_both_secrets_during_the_grace_period(
    client: Client, identity: TestIdentity, receiver: Receiver, world: World
) -> None:
    endpoint = await register(client, identity, receiver)
    old = endpoint["secret"]
    rotated = await client.post(
        f"{BASE}/{endpoint['id']}/rotate-secret", headers=identity.headers(OWNER)
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old
    assert rotated.json()["previousSecretExpiresAt"] is not None
    receiver.secrets[:] = [new]
    await world.event(entitlement(), uuid.uuid4())
    await received(receiver, 1)
    (got,) = receiver.received
    assert got.verified is not None  # by the new secret
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(got.body, got.headers)["type"] == "enrollment.activated"


async def test_the_test_event_and_a_replay_carry_the_same_id(
    client: Client, identity: TestIdentity, receiver: Receiver
) -> None:
    endpoint = await register(client, identity, receiver)
    sent = await client.post(f"{BASE}/{endpoint['id']}/test", headers=identity.headers(OWNER))
    assert sent.status_code == 202, sent.text
    await received(receiver, 1)
    await settled(client, identity, endpoint["id"])
    replayed = await client.post(
        f"{BASE}/{endpoint['id']}/deliveries/{sent.json()['deliveryId']}/replay",
        headers=identity.headers(OWNER),
    )
    assert replayed.status_code == 202, replayed.text
    await received(receiver, 2)
    assert receiver.ids() == [sent.json()["webhookId"]] * 2
    assert receiver.received[0].body == receiver.received[1].body
    assert receiver.received[1].verified["type"] == "webhook.test"


async def test_failed_deliveries_in_a_range_are_replayed(
    client: Client, identity: TestIdentity, receiver: Receiver, world: World
) -> None:
    receiver.answers = [(400, {})] * 10  # every attempt of the schedule fails
    endpoint = await register(client, identity, receiver)
    await world.event(entitlement(), uuid.uuid4())
    await wait_for(lambda: _failed(client, identity, endpoint["id"]), timeout=30, message="failed")
    since = "2000-01-01T00:00:00Z"
    replay = await client.post(
        f"{BASE}/{endpoint['id']}/replay-failed",
        json={"since": since, "until": "2100-01-01T00:00:00Z"},
        headers=identity.headers(OWNER),
    )
    assert (replay.status_code, replay.json()) == (202, {"replayed": 1})
    await received(receiver, 11)
    await settled(client, identity, endpoint["id"])
    assert len(set(receiver.ids())) == 1


async def _failed(client: Client, identity: TestIdentity, endpoint_id: str) -> bool:
    return bool(await delivery_log(client, identity, endpoint_id, status="failed"))


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"url": "http://169.254.169.254/x", "eventTypes": ["lead.created"]},
            422,
            "ENDPOINT_ADDRESS_FORBIDDEN",
        ),
        (
            {"url": "http://10.0.0.7/x", "eventTypes": ["lead.created"]},
            422,
            "ENDPOINT_ADDRESS_FORBIDDEN",
        ),
        (
            {"url": "http://[::ffff:169.254.169.254]/", "eventTypes": ["lead.created"]},
            422,
            "ENDPOINT_ADDRESS_FORBIDDEN",
        ),
        (
            {"url": "ftp://example.com/", "eventTypes": ["lead.created"]},
            422,
            "ENDPOINT_URL_INVALID",
        ),
        (
            {"url": "https://u:p@example.com/", "eventTypes": ["lead.created"]},
            422,
            "ENDPOINT_URL_INVALID",
        ),
        (
            {"url": "https://example.com/", "eventTypes": ["order.shipped"]},
            422,
            "UNKNOWN_EVENT_TYPE",
        ),
        ({"url": "https://example.com/", "eventTypes": []}, 400, None),
        ({"url": "https://example.com/", "eventTypes": "lead.created"}, 400, None),
        ({"url": 7, "eventTypes": ["lead.created"]}, 400, None),
        ({"url": "https://example.com/", "eventTypes": ["lead.created"], "x": 1}, 400, None),
    ],
)
async def test_a_bad_endpoint_is_refused_and_nothing_is_stored(
    client: Client, identity: TestIdentity, body: Any, status: int, code: str | None
) -> None:
    response = await client.post(BASE, json=body, headers=identity.headers(OWNER))
    assert response.status_code == status, response.text
    if code:
        assert response.json()["code"] == code
    listed = await client.get(BASE, headers=identity.headers(OWNER))
    assert listed.json()["total"] == 0


async def test_another_organization_sees_nothing(
    client: Client, identity: TestIdentity, receiver: Receiver
) -> None:
    endpoint = await register(client, identity, receiver)
    sent = await client.post(f"{BASE}/{endpoint['id']}/test", headers=identity.headers(OWNER))
    delivery_id = sent.json()["deliveryId"]
    other = identity.headers(OTHER_OWNER)
    theirs = f"/organizations/{OTHER_ORG}/webhook-endpoints/{endpoint['id']}"
    for response in (
        await client.get(theirs, headers=other),
        await client.get(f"{theirs}/deliveries", headers=other),
        await client.post(f"{theirs}/test", headers=other),
        await client.post(f"{theirs}/rotate-secret", headers=other),
        await client.delete(theirs, headers=other),
    ):
        assert (response.status_code, response.json()["code"]) == (
            404,
            "WEBHOOK_ENDPOINT_NOT_FOUND",
        )
    mine = f"{BASE}/{endpoint['id']}"
    for response in (
        await client.get(mine, headers=other),
        await client.get(f"{mine}/deliveries/{delivery_id}", headers=other),
        await client.post(f"{mine}/deliveries/{delivery_id}/replay", headers=other),
    ):
        assert response.status_code == 404
    missing = await client.get(f"{mine}/deliveries/{uuid.uuid4()}", headers=identity.headers(OWNER))
    assert missing.json()["code"] == "DELIVERY_NOT_FOUND"
    assert (await client.get(mine)).status_code == 401
    listed = await client.get(f"/organizations/{OTHER_ORG}/webhook-endpoints", headers=other)
    assert listed.json()["items"] == []


async def test_patch_and_delete(client: Client, identity: TestIdentity, receiver: Receiver) -> None:
    endpoint = await register(client, identity, receiver)
    path = f"{BASE}/{endpoint['id']}"
    patched = await client.patch(
        path,
        json={"eventTypes": ["payment.completed", "lead.created"], "enabled": False},
        headers=identity.headers(OWNER),
    )
    assert patched.status_code == 200, patched.text
    view = patched.json()
    assert (view["eventTypes"], view["enabled"]) == (["lead.created", "payment.completed"], False)
    assert "secret" not in view
    gone = await client.delete(path, headers=identity.headers(OWNER))
    assert gone.status_code == 204
    assert (await client.get(path, headers=identity.headers(OWNER))).status_code == 404


async def test_a_receiver_down_then_up_gets_every_event_once(
    client: Client, identity: TestIdentity, world: World
) -> None:
    port = free_port()
    down = Receiver()
    created = await client.post(
        BASE,
        json={"url": f"http://127.0.0.1:{port}/hooks", "eventTypes": ["enrollment.activated"]},
        headers=identity.headers(OWNER),
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    down.secrets.append(endpoint["secret"])
    events = 5
    for _ in range(events):
        await world.event(entitlement(), uuid.uuid4())

    async def all_refused() -> bool:
        log = await delivery_log(client, identity, endpoint["id"])
        return len(log) == events and all(d["attempts"] >= 1 for d in log)

    await wait_for(all_refused, timeout=15, message="every delivery refused once")
    assert all(d["lastError"] for d in await delivery_log(client, identity, endpoint["id"]))
    serve(down, port)  # the receiver comes up
    try:
        await received(down, events)
        await settled(client, identity, endpoint["id"])
    finally:
        assert down.server is not None
        down.server.shutdown()
        down.server.server_close()
    assert sorted(down.ids()) == sorted({*down.ids()})  # each id exactly once
    assert len(down.ids()) == events
    assert all(r.verified is not None for r in down.received)


async def test_a_replay_while_the_first_attempt_is_in_flight_is_sent_again(
    client: Client, identity: TestIdentity, receiver: Receiver
) -> None:
    endpoint = await register(client, identity, receiver)
    receiver.hold = threading.Event()
    sent = await client.post(f"{BASE}/{endpoint['id']}/test", headers=identity.headers(OWNER))
    await asyncio.to_thread(receiver.holding.wait, 15)
    assert receiver.holding.is_set()  # the first attempt is in the receiver's hands
    replayed = await client.post(
        f"{BASE}/{endpoint['id']}/deliveries/{sent.json()['deliveryId']}/replay",
        headers=identity.headers(OWNER),
    )
    assert replayed.status_code == 202, replayed.text
    receiver.hold.set()
    await received(receiver, 2)  # the in-flight attempt's success did not swallow the replay
    await settled(client, identity, endpoint["id"])
    assert receiver.ids() == [sent.json()["webhookId"]] * 2


async def test_a_host_that_does_not_resolve_is_refused(
    client: Client, identity: TestIdentity
) -> None:
    response = await client.post(
        BASE,
        json={"url": "https://no-such-host.invalid/", "eventTypes": ["lead.created"]},
        headers=identity.headers(OWNER),
    )
    assert (response.status_code, response.json()["code"]) == (422, "ENDPOINT_URL_INVALID")
