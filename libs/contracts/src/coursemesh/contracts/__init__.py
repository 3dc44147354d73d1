"""coursemesh event contracts: envelope, codec, naming and every event type.

Importing this package imports every event module, so :func:`registry` is always complete.
Event classes live in their producer's module: ``coursemesh.contracts.catalog``, ``.commerce``,
``.learning``, ``.customgen`` (and ``.demo`` for the event-spine tests); shared value types in
``coursemesh.contracts.types``.
"""

from coursemesh.contracts import catalog, commerce, customgen, demo, learning, types
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
    "catalog",
    "commerce",
    "customgen",
    "dead_letter_subject",
    "decode",
    "demo",
    "encode",
    "encode_payload",
    "envelope",
    "event",
    "learning",
    "new_event_id",
    "payload_type",
    "registry",
    "source_of",
    "stream_for_source",
    "stream_for_type",
    "stream_subjects",
    "subject_for",
    "types",
]
