"""Demo events used only by the event-spine tests and the event-hop benchmark."""

from __future__ import annotations

from coursemesh.contracts.envelope import Event, event


@event("demo.counter.set.v1")
class CounterSet(Event, frozen=True, kw_only=True):
    """State-carrying: the counter's full value, so late or reordered delivery is harmless."""

    counter_id: str
    value: int
