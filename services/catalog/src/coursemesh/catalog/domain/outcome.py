"""What a decision hands back besides the new state: the events to publish with it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from coursemesh.contracts import Event

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Emit:
    """One event of a decision, with the aggregate version it brings its aggregate to."""

    payload: Event
    aggregate_id: str | uuid.UUID
    aggregate_version: int


def given(value: T | msgspec.UnsetType, current: T) -> T:
    """An edit's field: the value sent, or ``current`` when the field was not sent."""
    return current if isinstance(value, msgspec.UnsetType) else value
