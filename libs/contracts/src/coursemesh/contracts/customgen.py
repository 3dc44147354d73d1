"""Events produced by the custom-gen service (stream ``CUSTOMGEN``, subjects ``customgen.>``).

Aggregate: the custom course, identified by its id. One version counter per custom course.
``checksum`` is always the MD5 of the canonical JSON of the course's ``data`` and
``file_size_bytes`` its byte length, exactly what the handshake compares.
"""

from __future__ import annotations

import uuid

from coursemesh.contracts.envelope import Event, event
from coursemesh.contracts.types import (
    Checksum,
    CustomCourseCode,
    CustomCourseUpdateReason,
    NonNegativeInt,
    RegenDecision,
    UserId,
)

__all__ = [
    "AudioRegenerated",
    "CustomCourseReady",
    "CustomCourseRequested",
    "CustomCourseUpdated",
    "RegenRequestDecided",
]


@event("customgen.custom_course.requested.v1")
class CustomCourseRequested(Event, frozen=True, kw_only=True):
    """A buyer submitted the intake for a purchase; the custom course row exists and its
    generation job has started (``submit-custom-course``)."""

    custom_course_id: uuid.UUID
    user_id: UserId
    organization_id: uuid.UUID
    purchase_id: uuid.UUID
    course_code: CustomCourseCode


@event("customgen.custom_course.ready.v1")
class CustomCourseReady(Event, frozen=True, kw_only=True):
    """Generation finished: every audio file is uploaded, the data is stored and checksummed.
    Clients can now download the course."""

    custom_course_id: uuid.UUID
    user_id: UserId
    checksum: Checksum
    file_size_bytes: NonNegativeInt


@event("customgen.custom_course.updated.v1")
class CustomCourseUpdated(Event, frozen=True, kw_only=True):
    """A ready custom course's data changed, so its checksum did (clients re-sync via the
    handshake)."""

    custom_course_id: uuid.UUID
    user_id: UserId
    checksum: Checksum
    file_size_bytes: NonNegativeInt
    reason: CustomCourseUpdateReason


@event("customgen.audio.regenerated.v1")
class AudioRegenerated(Event, frozen=True, kw_only=True):
    """An approved regen request replaced one audio file of a custom course.

    ``checksum`` and ``file_size_bytes`` describe the course data after the swap (a
    ``custom_course.updated`` with reason ``audio_regenerated`` accompanies it);
    ``audio_checksum`` is the MD5 of the new audio object.
    """

    custom_course_id: uuid.UUID
    user_id: UserId
    audio_id: uuid.UUID
    regen_request_id: uuid.UUID
    checksum: Checksum
    file_size_bytes: NonNegativeInt
    audio_checksum: Checksum


@event("customgen.regen_request.decided.v1")
class RegenRequestDecided(Event, frozen=True, kw_only=True):
    """Staff of the course's organization approved or rejected a buyer's request to regenerate
    one audio file. An approval starts a regeneration job; its result is an
    ``audio.regenerated`` event.
    """

    regen_request_id: uuid.UUID
    custom_course_id: uuid.UUID
    organization_id: uuid.UUID
    user_id: UserId
    audio_id: uuid.UUID
    decision: RegenDecision
    decided_by: UserId
    note: str | None = None
