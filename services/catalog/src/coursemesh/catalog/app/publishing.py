"""Staging a decision's events in the transaction that persists its state."""

from __future__ import annotations

from collections.abc import Iterable

from coursemesh.catalog.domain.outcome import Emit
from coursemesh.chassis.transaction import EventSink


def publish(sink: EventSink, events: Iterable[Emit]) -> None:
    for event in events:
        sink.publish(
            event.payload,
            aggregate_id=event.aggregate_id,
            aggregate_version=event.aggregate_version,
        )
