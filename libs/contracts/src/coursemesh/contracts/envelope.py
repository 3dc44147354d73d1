"""The event envelope, the payload base class and the registry from type name to payload Struct.

Every event that crosses a service boundary is an :class:`Envelope` whose ``payload`` is a
registered :class:`Event` subclass. Type names carry a version suffix
(``catalog.course.published.v1``); a breaking change is a new type, never an edit.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar, Generic, TypeVar

import msgspec
import uuid6

SOURCES: frozenset[str] = frozenset({"catalog", "commerce", "learning", "customgen", "demo"})

#: ``<source>.<aggregate>.<verb>.v<N>``: lower snake_case segments, version >= 1. Every segment is
#: a valid NATS subject token (no ``.``, ``*``, ``>`` or whitespace).
TYPE_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.v[1-9][0-9]*$")


class Event(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """Base class of every event payload. Subclasses are registered with :func:`event`."""

    event_type: ClassVar[str]


E = TypeVar("E", bound=Event)
_REGISTRY: dict[str, type[Event]] = {}


def event(type_name: str) -> Callable[[type[E]], type[E]]:
    """Register a payload Struct under ``type_name`` (``<source>.<aggregate>.<verb>.v<N>``)."""
    _check_type_name(type_name)

    def register(cls: type[E]) -> type[E]:
        if not (isinstance(cls, type) and issubclass(cls, Event)):
            raise TypeError(f"{cls!r} is not an Event subclass")
        existing = _REGISTRY.get(type_name)
        if existing is not None and existing is not cls:
            raise ValueError(f"event type {type_name!r} is already registered to {existing!r}")
        cls.event_type = type_name
        _REGISTRY[type_name] = cls
        return cls

    return register


def _check_type_name(type_name: str) -> None:
    if not TYPE_NAME_PATTERN.match(type_name):
        raise ValueError(
            f"event type {type_name!r} must look like '<source>.<aggregate>.<verb>.v<N>'"
            " (lower snake_case segments)"
        )
    parts = type_name.split(".")
    if parts[0] not in SOURCES:
        raise ValueError(f"event type {type_name!r} has unknown source {parts[0]!r}")


def registry() -> dict[str, type[Event]]:
    """A copy of the registry: type name -> payload Struct."""
    return dict(_REGISTRY)


def payload_type(type_name: str) -> type[Event]:
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise UnknownEventTypeError(type_name) from None


def source_of(type_name: str) -> str:
    return type_name.split(".", 1)[0]


def new_event_id() -> uuid.UUID:
    """A UUIDv7: time-ordered, so ids sort by creation time."""
    return uuid.UUID(int=uuid6.uuid7().int)


class Envelope(msgspec.Struct, Generic[E], frozen=True, kw_only=True):
    id: uuid.UUID
    type: str
    source: str
    occurred_at: datetime
    aggregate_id: str
    aggregate_version: int
    payload: E
    trace: dict[str, str] = msgspec.field(default_factory=dict)


def envelope(
    payload: E,
    *,
    aggregate_id: str | uuid.UUID,
    aggregate_version: int,
    trace: dict[str, str] | None = None,
    occurred_at: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> Envelope[E]:
    """Wrap a payload in a new envelope; the source is the type name's first segment.

    ``occurred_at`` defaults to now; it must be timezone-aware and is normalised to UTC.
    """
    type_name = getattr(type(payload), "event_type", None)
    if type_name is None:
        raise TypeError(f"{type(payload).__name__} is not a registered event type")
    if aggregate_version < 1:
        raise ValueError("aggregate_version starts at 1")
    if occurred_at is not None:
        if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
            raise ValueError("occurred_at must be timezone-aware (UTC)")
        occurred_at = occurred_at.astimezone(UTC)
    return Envelope(
        id=event_id or new_event_id(),
        type=type_name,
        source=source_of(type_name),
        occurred_at=occurred_at or datetime.now(UTC),
        aggregate_id=str(aggregate_id),
        aggregate_version=aggregate_version,
        payload=payload,
        trace=dict(trace or {}),
    )


class EventDecodeError(ValueError):
    """The bytes are not a valid envelope of a registered event type."""


class UnknownEventTypeError(EventDecodeError):
    def __init__(self, type_name: str) -> None:
        super().__init__(f"unknown event type {type_name!r}")
        self.type_name = type_name
