"""msgspec JSON codec for envelopes: two-phase decode (envelope, then the registered payload)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from coursemesh.contracts.envelope import (
    Envelope,
    Event,
    EventDecodeError,
    payload_type,
)


class _RawEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    type: str
    source: str
    occurred_at: datetime
    aggregate_id: str
    aggregate_version: int
    payload: msgspec.Raw
    trace: dict[str, str] = msgspec.field(default_factory=dict)


_encoder = msgspec.json.Encoder()
_raw_decoder = msgspec.json.Decoder(_RawEnvelope)


def encode(env: Envelope[Event]) -> bytes:
    return _encoder.encode(env)


def encode_payload(payload: Event) -> bytes:
    return _encoder.encode(payload)


def decode(data: bytes) -> Envelope[Event]:
    """Decode an envelope; raises :class:`EventDecodeError` for anything malformed or unknown."""
    try:
        raw = _raw_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise EventDecodeError(f"invalid envelope: {exc}") from exc
    cls = payload_type(raw.type)
    try:
        payload = msgspec.json.decode(raw.payload, type=cls)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise EventDecodeError(f"invalid payload of {raw.type}: {exc}") from exc
    return Envelope(
        id=raw.id,
        type=raw.type,
        source=raw.source,
        occurred_at=raw.occurred_at,
        aggregate_id=raw.aggregate_id,
        aggregate_version=raw.aggregate_version,
        payload=payload,
        trace=raw.trace,
    )
