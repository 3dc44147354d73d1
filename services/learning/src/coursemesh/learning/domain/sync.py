"""Offline sync: the course document a device keeps, its checksum, the cursor, and the order
offline operations are merged in. Pure: no I/O.

A device holds one document per course of the buyer's library and a cursor: the buyer's change
counter when it last synced. The server stamps every change to a document with the next number
of the counter; a sync returns the documents stamped after the cursor.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import msgspec

from coursemesh.chassis.errors import Conflict, Unprocessable
from coursemesh.learning.domain.model import Pause, PlayerSnapshot
from coursemesh.learning.domain.player import course_or_unknown

# --- cursor ------------------------------------------------------------------------------------

_CURSOR = re.compile(r"v1\.(0|[1-9][0-9]{0,17})")


def encode_cursor(seq: int) -> str:
    """Opaque to clients, deterministic for the server: the same counter, the same cursor."""
    return f"v1.{seq}"


def cursor_invalid() -> Unprocessable:
    return Unprocessable(
        "This cursor was not given to you: sync again without one", code="SYNC_CURSOR_INVALID"
    )


def decode_cursor(cursor: str | None, counter: int) -> int:
    """The counter a cursor stands for: 0 for none (a first sync). 422 ``SYNC_CURSOR_INVALID``
    for one this buyer cannot have been given (malformed, or beyond the buyer's counter)."""
    if cursor is None:
        return 0
    found = _CURSOR.fullmatch(cursor)
    if found is None:
        raise cursor_invalid()
    seq = int(found.group(1))
    if seq > counter:
        raise cursor_invalid()
    return seq


# --- the course document -----------------------------------------------------------------------


class _Doc(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    pass


class ItemDoc(_Doc, frozen=True):
    item_id: uuid.UUID
    workout_id: uuid.UUID
    position: int


class DayDoc(_Doc, frozen=True):
    day_offset: int
    is_rest: bool
    items: list[ItemDoc]


class WorkoutDoc(_Doc, frozen=True):
    workout_id: uuid.UUID
    title: str | None
    description: str | None
    duration_minutes: int | None
    instructions: str | None
    media_urls: list[str]


class PauseDoc(_Doc, frozen=True):
    run: int
    paused_on: date
    paused_at: datetime
    paused_by: str
    resumed_on: date | None
    resumed_at: datetime | None
    resumed_by: str | None
    days: int | None


class StateDoc(_Doc, frozen=True):
    """The buyer's own part of a course: what offline operations change."""

    entitlement_id: uuid.UUID
    status: str
    start_date: date | None
    restart_count: int
    completed_at: datetime | None
    completed_item_ids: list[str]  # sorted
    pauses: list[PauseDoc]  # every run's, oldest first
    unlocked: bool


class CourseDocument(_Doc, frozen=True, tag_field="kind", tag="trainer"):
    """A trainer's course: its curriculum and the buyer's state in it."""

    course_id: uuid.UUID
    organization_id: uuid.UUID
    name: str | None
    image_url: str | None
    duration_days: int | None
    curriculum_version: int | None
    release_mode: str
    days: list[DayDoc]
    workouts: list[WorkoutDoc]
    state: StateDoc
    checksum: str


def _utc(instant: datetime | None) -> datetime | None:
    """Every instant in UTC: the same instant, the same text, whatever zone it was read in."""
    return None if instant is None else instant.astimezone(UTC)


def _pause(p: Pause) -> PauseDoc:
    return PauseDoc(
        run=p.run,
        paused_on=p.paused_on,
        paused_at=p.paused_at.astimezone(UTC),
        paused_by=p.paused_by,
        resumed_on=p.resumed_on,
        resumed_at=_utc(p.resumed_at),
        resumed_by=p.resumed_by,
        days=p.days,
    )


def course_state(snapshot: PlayerSnapshot) -> StateDoc:
    enrollment = snapshot.enrollment
    return StateDoc(
        entitlement_id=snapshot.entitlement.entitlement_id,
        status=snapshot.entitlement.status,
        start_date=None if enrollment is None else enrollment.start_date,
        restart_count=0 if enrollment is None else enrollment.restart_count,
        completed_at=None if enrollment is None else _utc(enrollment.completed_at),
        completed_item_ids=sorted(snapshot.completed_item_ids),
        pauses=[_pause(p) for p in snapshot.pauses],
        unlocked=enrollment is not None and enrollment.unlocked_at is not None,
    )


def checksum(document: CourseDocument) -> str:
    """MD5 (hex) of the document's canonical JSON without ``checksum``: keys sorted, no
    whitespace, UTF-8, times as RFC 3339 in UTC. A device recomputes it the same way."""
    body = msgspec.to_builtins(document)
    del body["checksum"]
    canonical = msgspec.json.encode(body, order="sorted")
    return hashlib.md5(canonical, usedforsecurity=False).hexdigest()


def course_document(snapshot: PlayerSnapshot) -> CourseDocument:
    """The document a device keeps for a course the buyer holds."""
    course = course_or_unknown(snapshot.course, snapshot.entitlement)
    curriculum = snapshot.curriculum
    days = [] if curriculum is None else sorted(curriculum.days, key=lambda d: d.day_offset)
    workouts = (
        []
        if curriculum is None
        else sorted(curriculum.workouts.values(), key=lambda w: str(w.workout_id))
    )
    document = CourseDocument(
        course_id=course.course_id,
        organization_id=course.organization_id,
        name=course.name,
        image_url=course.image_url,
        duration_days=course.duration_days,
        curriculum_version=course.curriculum_version,
        release_mode=course.release_mode,
        days=[
            DayDoc(
                day_offset=d.day_offset,
                is_rest=d.is_rest,
                items=[
                    ItemDoc(item_id=i.item_id, workout_id=i.workout_id, position=i.position)
                    for i in sorted(d.items, key=lambda i: (i.position, str(i.item_id)))
                ],
            )
            for d in days
        ],
        workouts=[
            WorkoutDoc(
                workout_id=w.workout_id,
                title=w.title,
                description=w.description,
                duration_minutes=w.duration_minutes,
                instructions=w.instructions,
                media_urls=list(w.media_urls),
            )
            for w in workouts
        ],
        state=course_state(snapshot),
        checksum="",
    )
    return msgspec.structs.replace(document, checksum=checksum(document))


# --- custom courses ----------------------------------------------------------------------------


class CustomFile(msgspec.Struct, frozen=True, kw_only=True):
    """One audio file of a custom course, as custom-gen's manifest lists it."""

    file_id: str
    session: int
    md5: str
    sha256: str | None  # None: stored before content addressing (compare md5)
    size_bytes: int
    content_type: str


class CustomCourse(msgspec.Struct, frozen=True, kw_only=True):
    """A buyer's ready custom course as custom-gen last announced it. ``document`` is the
    canonical JSON of its data: the bytes ``checksum`` (MD5) is over."""

    course_id: uuid.UUID
    checksum: str
    size_bytes: int
    document: str
    files: list[CustomFile]


class CustomCourseDocument(_Doc, frozen=True, tag_field="kind", tag="custom"):
    """A custom course: its data as custom-gen generated it, checksummed as the handshake is
    (MD5 of the data's canonical JSON), so a device verifies it the same way."""

    course_id: uuid.UUID
    checksum: str
    size_bytes: int
    data: dict[str, Any]


#: What a sync answers per changed course.
SyncDocument = CourseDocument | CustomCourseDocument


class SyncFile(_Doc, frozen=True):
    """A file a device keeps beside a document. ``path`` is the gateway route that streams it
    to the course's owner; a device that holds a file with this ``sha256`` skips it."""

    course_id: uuid.UUID
    file_id: str
    session: int
    md5: str
    sha256: str | None
    size_bytes: int
    content_type: str
    path: str


def custom_file_path(course_id: uuid.UUID, file_id: str) -> str:
    """custom-gen's download route for one file, through the gateway."""
    return f"/me/custom-courses/{course_id}/files/{file_id}"


_custom_data = msgspec.json.Decoder(dict[str, Any])


def custom_document(course: CustomCourse) -> CustomCourseDocument:
    return CustomCourseDocument(
        course_id=course.course_id,
        checksum=course.checksum,
        size_bytes=course.size_bytes,
        data=_custom_data.decode(course.document),
    )


def custom_files(course: CustomCourse) -> list[SyncFile]:
    return [
        SyncFile(
            course_id=course.course_id,
            file_id=f.file_id,
            session=f.session,
            md5=f.md5,
            sha256=f.sha256,
            size_bytes=f.size_bytes,
            content_type=f.content_type,
            path=custom_file_path(course.course_id, f.file_id),
        )
        for f in course.files
    ]


def holds(snapshot: PlayerSnapshot | None) -> bool:
    """The buyer's devices keep the course: the entitlement opens the player."""
    return (
        snapshot is not None
        and snapshot.entitlement.access.status == "active"
        and not (snapshot.entitlement.access.access_revoked)
    )


# --- offline operations ------------------------------------------------------------------------

#: How far ahead of the server's clock an operation's instant may be (devices' clocks drift).
CLOCK_SKEW = timedelta(minutes=5)

OperationType = Literal["complete", "unmark", "start", "restart"]


class Operation(msgspec.Struct, frozen=True, kw_only=True):
    """One change a device made offline, at ``at`` (the device's instant, with its offset)."""

    id: uuid.UUID
    type: OperationType
    course_id: uuid.UUID
    at: datetime
    workout_id: uuid.UUID | None = None
    day_offset: int | None = None


def merge_order(operations: Sequence[Operation]) -> list[Operation]:
    """The order a batch is applied in: by instant, then by id (a total order: every device
    and every replay agree on it)."""
    return sorted(operations, key=lambda o: (o.at, str(o.id)))


#: Before any device could have run the player: a broken clock (and an instant whose zone
#: shift leaves the calendar's range).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def require_not_future(at: datetime, now: datetime) -> None:
    """An instant the server can take as "now": 422 ``AT_OUT_OF_RANGE`` before 2000,
    ``AT_IN_FUTURE`` beyond the server's clock and :data:`CLOCK_SKEW`."""
    if at < EARLIEST:
        raise Unprocessable(
            f"The operation's instant is before {EARLIEST.date()}", code="AT_OUT_OF_RANGE"
        )
    if at > now + CLOCK_SKEW:
        raise Unprocessable(
            f"The operation's instant is after the server's clock ({now.isoformat()})",
            code="AT_IN_FUTURE",
        )


def require_not_superseded(last_change: datetime | None, at: datetime) -> None:
    """The latest change of an item wins: an offline change older than the item's last change
    is refused (409 ``SUPERSEDED``) and changes nothing."""
    if last_change is not None and at < last_change:
        raise Conflict(
            f"The item changed later ({last_change.isoformat()}) than this operation",
            code="SUPERSEDED",
        )


class OperationOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What became of one offline operation: kept with its id, reported again on a replay."""

    id: uuid.UUID
    type: str
    course_id: uuid.UUID
    applied: bool
    code: str | None = None  # a refusal's stable code
    detail: str | None = None
