"""Events produced by the custom-gen service (stream ``CUSTOMGEN``, subjects ``customgen.>``).

Aggregate: the custom course, identified by its id. One version counter per custom course.
``checksum`` is always the MD5 of the canonical JSON of the course's ``data`` and
``file_size_bytes`` its byte length, exactly what the handshake compares.
"""

from __future__ import annotations

import uuid

import msgspec

from coursemesh.contracts.envelope import Event, event
from coursemesh.contracts.types import (
    Checksum,
    CustomCourseCode,
    CustomCourseUpdateReason,
    NonNegativeInt,
    PositiveInt,
    RegenDecision,
    UserId,
)

__all__ = [
    "AudioRegenerated",
    "CourseFile",
    "CustomCourseContent",
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


class CourseFile(msgspec.Struct, frozen=True, kw_only=True):
    """One audio file of a custom course, as its manifest lists it: how a device verifies the
    bytes it downloads, and tells whether it holds them already (``sha256``)."""

    file_id: str
    session: PositiveInt
    md5: Checksum
    sha256: str | None
    """``None`` for a file stored before content addressing: a device compares ``md5``."""
    size_bytes: NonNegativeInt
    content_type: str


@event("customgen.custom_course.content.v1")
class CustomCourseContent(Event, frozen=True, kw_only=True):
    """What a buyer's devices hold of a ready custom course: its document and its files.

    Published in the transaction of every ``custom_course.ready`` and
    ``custom_course.updated``, so a consumer can serve the course offline without asking
    custom-gen. ``document`` is the canonical JSON of the course data, exactly the bytes
    ``checksum`` (MD5) and ``file_size_bytes`` are over. ``version`` rises with every change
    of the course: keep only the newest.
    """

    custom_course_id: uuid.UUID
    user_id: UserId
    organization_id: uuid.UUID
    version: PositiveInt
    checksum: Checksum
    file_size_bytes: NonNegativeInt
    document: str
    files: list[CourseFile]


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
