"""coursemesh event contracts: envelope, codec, naming and every event type."""

from coursemesh.contracts.codec import decode, encode, encode_payload
from coursemesh.contracts.envelope import (
    Envelope,
    Event,
    EventDecodeError,
    UnknownEventTypeError,
    envelope,
    event,
    new_event_id,
    payload_type,
    registry,
    source_of,
)
from coursemesh.contracts.subjects import (
    DEAD_LETTER_STREAM,
    dead_letter_subject,
    stream_for_source,
    stream_for_type,
    stream_subjects,
    subject_for,
)

__all__ = [
    "DEAD_LETTER_STREAM",
    "Envelope",
    "Event",
    "EventDecodeError",
    "UnknownEventTypeError",
    "dead_letter_subject",
    "decode",
    "encode",
    "encode_payload",
    "envelope",
    "event",
    "new_event_id",
    "payload_type",
    "registry",
    "source_of",
    "stream_for_source",
    "stream_for_type",
    "stream_subjects",
    "subject_for",
]
