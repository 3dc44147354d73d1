"""The intake use case against an in-memory fake of its port: a run of events becomes exactly
one delivery per (event, subscribed endpoint), with one subscriber lookup for the whole run."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from coursemesh.integrations.app.intake import Arrival, fan_out
from coursemesh.integrations.app.ports import Audience, NewDelivery
from coursemesh.integrations.domain.catalogue import PublicEvent, body_of, subscribed

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
AT = datetime(2026, 12, 6, 11, 59, tzinfo=UTC)
ORG, OTHER_ORG = uuid.uuid4(), uuid.uuid4()


class Data(msgspec.Struct, rename="camel"):
    thing_id: uuid.UUID


@dataclass(frozen=True)
class FakeEndpoint:
    organization_id: uuid.UUID
    event_types: list[str]
    enabled: bool = True
    id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass
class FakeIntake:
    """:class:`IntakeTransaction` over a list of endpoints, recording each call."""

    endpoints: list[FakeEndpoint]
    lookups: list[list[Audience]] = field(default_factory=list)
    inserts: list[list[NewDelivery]] = field(default_factory=list)

    async def subscribers(
        self, audiences: Sequence[Audience]
    ) -> Mapping[Audience, Sequence[uuid.UUID]]:
        self.lookups.append(list(audiences))
        found: dict[Audience, list[uuid.UUID]] = {}
        for org, kind in audiences:
            for e in self.endpoints:
                if e.organization_id == org and e.enabled and subscribed(e.event_types, kind):
                    found.setdefault((org, kind), []).append(e.id)
        return found

    async def add_deliveries(self, deliveries: Sequence[NewDelivery]) -> None:
        self.inserts.append(list(deliveries))


def arrival(kind: str, org: uuid.UUID) -> Arrival:
    return PublicEvent(kind, org, Data(thing_id=uuid.uuid4())), uuid.uuid4(), AT


async def test_a_mixed_run_delivers_each_event_to_its_subscribers_after_one_lookup() -> None:
    both = FakeEndpoint(ORG, ["enrollment.activated", "payment.completed"])
    enrollments = FakeEndpoint(ORG, ["enrollment.activated"])
    disabled = FakeEndpoint(ORG, ["enrollment.activated", "payment.completed"], enabled=False)
    theirs = FakeEndpoint(OTHER_ORG, ["lead.created", "payment.completed"])
    tx = FakeIntake([both, enrollments, disabled, theirs])
    run = [
        activated := arrival("enrollment.activated", ORG),
        paid := arrival("payment.completed", ORG),
        arrival("lead.created", ORG),  # nobody of ORG listens to leads
        lead := arrival("lead.created", OTHER_ORG),
        again := arrival("enrollment.activated", ORG),
        arrival("enrollment.activated", OTHER_ORG),  # nor OTHER_ORG to enrollments
    ]

    assert await fan_out(tx, run, NOW) == 6

    (asked,) = tx.lookups  # the whole run at once, each pair once
    assert len(asked) == 5
    assert set(asked) == {
        (ORG, "enrollment.activated"),
        (ORG, "payment.completed"),
        (ORG, "lead.created"),
        (OTHER_ORG, "lead.created"),
        (OTHER_ORG, "enrollment.activated"),
    }
    (inserted,) = tx.inserts
    assert [(d.event_id, d.endpoint_id) for d in inserted] == [
        (activated[1], both.id),
        (activated[1], enrollments.id),
        (paid[1], both.id),
        (lead[1], theirs.id),
        (again[1], both.id),
        (again[1], enrollments.id),
    ]
    by_event = {event_id: event for event, event_id, _ in run}
    for d in inserted:
        assert d.event_id is not None
        event = by_event[d.event_id]
        assert (d.event_type, d.organization_id) == (event.type, event.organization_id)
        assert d.body == body_of(event.type, event.data, AT)
        assert json.loads(d.body)["type"] == event.type
        assert d.webhook_id == f"msg_{d.id.hex}"
        assert d.created_at == NOW
    assert len({d.id for d in inserted}) == len(inserted)


async def test_a_run_nobody_listens_to_costs_one_lookup_and_no_insert() -> None:
    tx = FakeIntake([FakeEndpoint(ORG, ["lead.created"], enabled=False)])
    run = [arrival("enrollment.activated", ORG), arrival("lead.created", ORG)]
    assert await fan_out(tx, run, NOW) == 0
    assert (len(tx.lookups), tx.inserts) == (1, [])


async def test_an_empty_run_asks_nothing() -> None:
    tx = FakeIntake([])
    assert await fan_out(tx, [], NOW) == 0
    assert (tx.lookups, tx.inserts) == ([], [])
