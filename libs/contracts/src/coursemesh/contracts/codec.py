"""msgspec JSON codec for envelopes: two-phase decode (envelope, then the registered payload)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

from coursemesh.contracts.envelope import (
    Envelope,
    Event,
    EventDecodeError,
    payload_type,
    source_of,
)


class _RawEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """The envelope as it is on the wire; the payload is decoded in a second step."""

    id: uuid.UUID
    type: str
    source: str
    occurred_at: Annotated[datetime, msgspec.Meta(tz=True)]
    aggregate_id: Annotated[str, msgspec.Meta(min_length=1)]
    aggregate_version: Annotated[int, msgspec.Meta(ge=1)]
    payload: msgspec.Raw
    trace: dict[str, str] = msgspec.field(default_factory=dict)


_encoder = msgspec.json.Encoder()
_raw_decoder = msgspec.json.Decoder(_RawEnvelope)
_payload_decoders: dict[type[Event], msgspec.json.Decoder[Event]] = {}


def _payload_decoder(cls: type[Event]) -> msgspec.json.Decoder[Event]:
    decoder = _payload_decoders.get(cls)
    if decoder is None:
        decoder = _payload_decoders[cls] = msgspec.json.Decoder(cls)
    return decoder


def envelope_wire_schema() -> dict[str, Any]:
    """JSON schema of the envelope :func:`decode` accepts (``payload`` is any JSON object)."""
    return msgspec.json.schema(_RawEnvelope)


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
    if raw.source != source_of(raw.type):
        raise EventDecodeError(f"source {raw.source!r} does not match event type {raw.type!r}")
    try:
        payload = _payload_decoder(cls).decode(raw.payload)
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
