"""The sender against fakes of its ports: the address is checked again at send time (a host
whose DNS now points inside the network gets no request), the answer decides the delivery's
state, one endpoint has one delivery in flight."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from coursemesh.integrations.app.ports import ClaimedDelivery, Endpoint, SendResult
from coursemesh.integrations.app.sending import DeliverySender, SenderPolicy
from coursemesh.integrations.domain.secrets import new_secret
from coursemesh.integrations.domain.ssrf import IPAddress, Target

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def endpoint(url: str = "https://hooks.example.com/in") -> Endpoint:
    return Endpoint(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        url=url,
        description=None,
        event_types=["lead.created"],
        enabled=True,
        disabled_reason=None,
        secret=new_secret(),
        previous_secret=None,
        previous_secret_expires_at=None,
        created_at=NOW,
        updated_at=NOW,
    )


def claimed(ep: Endpoint, attempts: int = 0) -> ClaimedDelivery:
    return ClaimedDelivery(uuid.uuid4(), "msg_1", '{"type":"lead.created"}', attempts, ep, NOW)


class Queue:
    def __init__(self, due: list[ClaimedDelivery] | None = None) -> None:
        self.due = due or []
        self.records: list[tuple[SendResult, str, datetime | None, str | None]] = []
        self.busy_seen: list[list[uuid.UUID]] = []

    async def claim_due(
        self, now: datetime, limit: int, lease_seconds: float, busy: Sequence[uuid.UUID]
    ) -> list[ClaimedDelivery]:
        self.busy_seen.append(list(busy))
        taken: list[ClaimedDelivery] = []
        for d in self.due:  # the port's contract: at most one per endpoint, none of busy ones
            if d.endpoint.id not in busy and all(t.endpoint.id != d.endpoint.id for t in taken):
                taken.append(d)
        taken = taken[:limit]
        self.due = [d for d in self.due if d not in taken]
        return taken

    async def record(
        self,
        delivery: ClaimedDelivery,
        result: SendResult,
        at: datetime,
        *,
        status: str,
        next_attempt_at: datetime | None,
        disable_reason: str | None = None,
    ) -> None:
        self.records.append((result, status, next_attempt_at, disable_reason))

    async def purge(self, before: datetime) -> int:
        return 0


class Resolver:
    def __init__(self, answer: str) -> None:
        self.answer = answer

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(self.answer)]


class Sender:
    def __init__(self, status: int | None = 204, **extra: object) -> None:
        self.status = status
        self.extra = extra
        self.sent: list[tuple[Target, IPAddress, dict[str, str]]] = []

    async def send(
        self,
        target: Target,
        address: IPAddress,
        headers: dict[str, str],
        body: str,
        timeout: float,
    ) -> SendResult:
        self.sent.append((target, address, headers))
        return SendResult(status=self.status, latency_ms=3, **self.extra)  # type: ignore[arg-type]


POLICY = SenderPolicy(
    allow_loopback=False,
    retry_scale=1.0,
    timeout=15,
    concurrency=4,
    lease_seconds=60,
    poll_interval=1,
    retention=timedelta(days=30),
)


def sender(queue: Queue, resolver: Resolver, http: Sender) -> DeliverySender:
    return DeliverySender(queue, resolver, http, POLICY, lambda: NOW)


async def test_a_host_resolving_inside_the_network_gets_no_request() -> None:
    queue, http = Queue(), Sender()
    await sender(queue, Resolver("10.0.0.9"), http).deliver(claimed(endpoint()))
    assert http.sent == []
    ((result, status, next_at, _),) = queue.records
    assert result.error is not None
    assert result.error.startswith("refused")
    assert status == "pending"
    assert next_at is not None
    assert timedelta(seconds=4) <= next_at - NOW <= timedelta(seconds=6)  # 5 s, jittered


async def test_the_request_goes_to_the_checked_address_signed() -> None:
    queue, http = Queue(), Sender()
    await sender(queue, Resolver("93.184.216.34"), http).deliver(claimed(endpoint()))
    ((target, address, headers),) = http.sent
    assert str(address) == "93.184.216.34"
    assert (target.host_header, target.path) == ("hooks.example.com", "/in")
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-signature"].startswith("v1,")
    assert queue.records[0][1] == "delivered"


async def test_410_fails_the_delivery_and_disables_the_endpoint() -> None:
    queue = Queue()
    await sender(queue, Resolver("93.184.216.34"), Sender(410)).deliver(claimed(endpoint()))
    ((_, status, next_at, disabled),) = queue.records
    assert (status, next_at) == ("failed", None)
    assert disabled is not None


async def test_the_last_attempt_fails_for_good() -> None:
    queue = Queue()
    await sender(queue, Resolver("93.184.216.34"), Sender(500)).deliver(
        claimed(endpoint(), attempts=9)
    )
    assert queue.records[0][1:3] == ("failed", None)


async def test_one_delivery_in_flight_per_endpoint() -> None:
    ep, other = endpoint(), endpoint()
    queue = Queue([claimed(ep), claimed(ep), claimed(other)])
    s = sender(queue, Resolver("93.184.216.34"), Sender())
    assert await s.send_due() == 2  # one of each endpoint
    # while they are in flight, the next round names both endpoints busy
    await s.send_due()
    assert sorted(queue.busy_seen[1]) == sorted([ep.id, other.id])


class BrokenSender(Sender):
    async def send(
        self,
        target: Target,
        address: IPAddress,
        headers: dict[str, str],
        body: str,
        timeout: float,
    ) -> SendResult:
        raise RuntimeError("a bug of ours")


async def test_a_fault_of_ours_is_recorded_as_an_attempt_and_retried() -> None:
    queue = Queue()
    await sender(queue, Resolver("93.184.216.34"), BrokenSender()).deliver(claimed(endpoint()))
    ((result, status, next_at, _),) = queue.records
    assert (result.status, result.error) == (None, "internal: RuntimeError")
    assert status == "pending"
    assert next_at is not None
    assert next_at > NOW


async def test_an_internationalised_host_is_looked_up_and_sent_in_its_ascii_form() -> None:
    class Recording(Resolver):
        asked: list[str] = []

        async def resolve(self, host: str, port: int) -> list[IPAddress]:
            self.asked.append(host)
            return await super().resolve(host, port)

    queue, http, resolver = Queue(), Sender(), Recording("93.184.216.34")
    await sender(queue, resolver, http).deliver(claimed(endpoint("https://bücher.example/in")))
    assert resolver.asked == ["xn--bcher-kva.example"]
    ((target, _, _),) = http.sent
    assert target.host_header == "xn--bcher-kva.example"
