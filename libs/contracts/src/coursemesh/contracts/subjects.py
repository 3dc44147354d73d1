"""Subject and stream naming. One stream per producing service; the subject is the type name."""

from __future__ import annotations

from coursemesh.contracts.envelope import source_of

DEAD_LETTER_STREAM = "DEADLETTER"
DEAD_LETTER_PREFIX = "deadletter"


def subject_for(type_name: str) -> str:
    """``catalog.course.published.v1`` is published on the subject of the same name."""
    return type_name


def stream_for_source(source: str) -> str:
    """``catalog`` -> ``CATALOG``: the stream holding every event that service produces."""
    return source.upper()


def stream_subjects(source: str) -> list[str]:
    return [f"{source}.>"]


def stream_for_type(type_name: str) -> str:
    return stream_for_source(source_of(type_name))


def dead_letter_subject(consumer: str, stream: str) -> str:
    """Where a consumer parks a message it could not process: ``deadletter.<stream>.<consumer>``."""
    return f"{DEAD_LETTER_PREFIX}.{stream}.{consumer}"
