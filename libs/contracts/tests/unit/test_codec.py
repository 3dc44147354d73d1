"""Envelope round trips through the codec, and every way decoding must fail."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from coursemesh.contracts import (
    Envelope,
    Event,
    EventDecodeError,
    UnknownEventTypeError,
    decode,
    encode,
    encode_payload,
    envelope,
    new_event_id,
    registry,
)
from coursemesh.contracts.catalog import CurriculumChanged
from coursemesh.contracts.examples import EXAMPLE_TIME, example_payloads

EXAMPLES = example_payloads()


def test_examples_cover_every_registered_type() -> None:
    assert sorted(EXAMPLES) == sorted(registry())
    for name, payload in EXAMPLES.items():
        assert registry()[name] is type(payload)


@pytest.mark.parametrize("type_name", sorted(registry()))
def test_envelope_round_trip(type_name: str) -> None:
    payload = EXAMPLES[type_name]
    aggregate_id = uuid.uuid4()
    env = envelope(
        payload,
        aggregate_id=aggregate_id,
        aggregate_version=7,
        trace={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        occurred_at=EXAMPLE_TIME,
    )
    assert env.type == type_name
    assert env.source == type_name.split(".")[0]
    assert env.aggregate_id == str(aggregate_id)

    data = encode(env)
    back = decode(data)
    assert back == env
    assert type(back.payload) is type(payload)
    assert back.payload == payload
    assert encode(back) == data
    # the payload alone is the envelope's payload member, byte for byte
    assert json.loads(encode_payload(payload)) == json.loads(data)["payload"]


@pytest.mark.parametrize("type_name", sorted(registry()))
def test_payload_json_is_snake_case(type_name: str) -> None:
    fields = msgspec.json.decode(encode_payload(EXAMPLES[type_name]))
    for key in fields:
        assert key == key.lower(), key
        assert " " not in key, key
        assert "-" not in key, key


def test_event_ids_are_uuid7_and_time_ordered() -> None:
    ids = [new_event_id() for _ in range(50)]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids)


def test_envelope_defaults() -> None:
    env = envelope(EXAMPLES["demo.counter.set.v1"], aggregate_id="c-1", aggregate_version=1)
    assert env.id.version == 7
    assert env.trace == {}
    assert env.occurred_at.tzinfo is not None
    assert abs(datetime.now(UTC) - env.occurred_at) < timedelta(minutes=1)


def test_envelope_normalises_occurred_at_to_utc() -> None:
    cet = timezone(timedelta(hours=1))
    local = datetime(2025, 3, 1, 10, 30, tzinfo=cet)
    env = envelope(
        EXAMPLES["demo.counter.set.v1"], aggregate_id="c", aggregate_version=1, occurred_at=local
    )
    assert env.occurred_at == local
    assert env.occurred_at.utcoffset() == timedelta(0)
    assert b'"occurred_at":"2025-03-01T09:30:00Z"' in encode(env)


def test_envelope_rejects_naive_occurred_at_and_bad_version() -> None:
    payload = EXAMPLES["demo.counter.set.v1"]
    with pytest.raises(ValueError, match="timezone"):
        envelope(payload, aggregate_id="c", aggregate_version=1, occurred_at=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="aggregate_version"):
        envelope(payload, aggregate_id="c", aggregate_version=0)


def test_envelope_rejects_unregistered_payload() -> None:
    class Stray(Event, frozen=True, kw_only=True):
        x: int

    with pytest.raises(TypeError, match="not a registered event type"):
        envelope(Stray(x=1), aggregate_id="s", aggregate_version=1)


# --- decoding failures ----------------------------------------------------------------------


def _wire(**changes: Any) -> bytes:
    env = envelope(
        EXAMPLES["catalog.course.published.v1"],
        aggregate_id="a",
        aggregate_version=1,
        occurred_at=EXAMPLE_TIME,
    )
    doc = json.loads(encode(env))
    for key, value in changes.items():
        if value is _DROP:
            del doc[key]
        else:
            doc[key] = value
    return json.dumps(doc).encode()


_DROP = object()


def test_valid_wire_decodes() -> None:
    assert decode(_wire()).type == "catalog.course.published.v1"


def test_unknown_type_raises_unknown_event_type_error() -> None:
    with pytest.raises(UnknownEventTypeError) as info:
        decode(_wire(type="catalog.course.exploded.v1"))
    assert info.value.type_name == "catalog.course.exploded.v1"
    assert isinstance(info.value, EventDecodeError)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not json", id="not json"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b'{"id": "x"', id="truncated"),
        pytest.param(b"\xff\xfe\x00", id="binary"),
        pytest.param(b"{}", id="empty object"),
    ],
)
def test_malformed_bytes_raise_event_decode_error(data: bytes) -> None:
    with pytest.raises(EventDecodeError):
        decode(data)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"id": "not-a-uuid"}, id="bad id"),
        pytest.param({"id": _DROP}, id="missing id"),
        pytest.param({"occurred_at": "2025-03-01T09:30:00"}, id="naive occurred_at"),
        pytest.param({"occurred_at": "yesterday"}, id="bad occurred_at"),
        pytest.param({"aggregate_version": 0}, id="version 0"),
        pytest.param({"aggregate_version": "1"}, id="version as string"),
        pytest.param({"aggregate_id": ""}, id="empty aggregate id"),
        pytest.param({"source": "commerce"}, id="source does not match type"),
        pytest.param({"trace": {"traceparent": 1}}, id="bad trace"),
        pytest.param({"payload": _DROP}, id="missing payload"),
        pytest.param({"payload": []}, id="payload not an object"),
        pytest.param({"payload": {"course_id": "x"}}, id="payload missing fields"),
    ],
)
def test_invalid_envelope_raises_event_decode_error(changes: dict[str, Any]) -> None:
    with pytest.raises(EventDecodeError):
        decode(_wire(**changes))


def _payload(type_name: str, **changes: Any) -> bytes:
    env = envelope(EXAMPLES[type_name], aggregate_id="a", aggregate_version=1)
    doc = json.loads(encode(env))
    doc["payload"].update(changes)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("type_name", "changes"),
    [
        pytest.param("commerce.plan.priced.v1", {"price_in_cents": -1}, id="negative cents"),
        pytest.param("commerce.plan.priced.v1", {"price_in_cents": 1.5}, id="fractional cents"),
        pytest.param("commerce.plan.priced.v1", {"currency": "usd"}, id="lower-case currency"),
        pytest.param("commerce.entitlement.changed.v1", {"status": "gone"}, id="unknown status"),
        pytest.param("commerce.entitlement.changed.v1", {"user_id": ""}, id="empty user id"),
        pytest.param(
            "commerce.entitlement.changed.v1",
            {"changed_at": "2025-03-01T09:30:00"},
            id="naive instant",
        ),
        pytest.param("catalog.membership.changed.v1", {"role": "king"}, id="unknown role"),
        pytest.param("customgen.custom_course.ready.v1", {"checksum": "abc"}, id="short md5"),
        pytest.param(
            "commerce.custom_course.purchased.v1", {"course_code": "A99ENB"}, id="bad code"
        ),
        pytest.param("learning.course.started.v1", {"start_date": "2025-13-01"}, id="bad date"),
        pytest.param("catalog.course.published.v1", {"course_id": 5}, id="id not a uuid"),
    ],
)
def test_invalid_payload_raises_event_decode_error(type_name: str, changes: dict[str, Any]) -> None:
    with pytest.raises(EventDecodeError, match=type_name):
        decode(_payload(type_name, **changes))


def test_unknown_payload_fields_are_ignored() -> None:
    """Consumers ignore fields they do not know: that is what makes new optional fields safe."""
    back = decode(_payload("commerce.plan.priced.v1", added_in_a_later_release=True))
    assert back.payload == EXAMPLES["commerce.plan.priced.v1"]


def test_curriculum_round_trip_keeps_days_and_items() -> None:
    payload = EXAMPLES["catalog.course.curriculum_changed.v1"]
    assert isinstance(payload, CurriculumChanged)
    back = decode(encode(envelope(payload, aggregate_id=payload.course_id, aggregate_version=3)))
    assert isinstance(back.payload, CurriculumChanged)
    assert [d.day_offset for d in back.payload.days] == list(range(back.payload.duration_days))
    assert back.payload.days[1].is_rest
    assert [i.workout_id for i in back.payload.days[2].items] == [
        payload.days[0].items[0].workout_id
    ]
    assert isinstance(back, Envelope)
