"""Offline sync of the buyer's library: the changes since a cursor, offline operations, and the
sanity check of what a device holds.

An offline operation goes through the player's own use cases (``app/player.py``) with the
operation's instant as the clock: the same rules as online, one transaction each, so one refusal
leaves the others applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec

from coursemesh.chassis.errors import DomainError
from coursemesh.learning.app import player
from coursemesh.learning.app.ports import PlayerStorage, SyncReader, SyncStorage
from coursemesh.learning.domain.certificate import Certificate
from coursemesh.learning.domain.model import Clock
from coursemesh.learning.domain.sync import (
    Operation,
    OperationOutcome,
    StateDoc,
    SyncDocument,
    SyncFile,
    course_document,
    course_state,
    custom_document,
    custom_files,
    decode_cursor,
    encode_cursor,
    holds,
    merge_order,
    require_not_future,
)


class SyncPage(msgspec.Struct, frozen=True, kw_only=True):
    cursor: str
    courses: list[SyncDocument]  # in the order of their changes
    removed: list[uuid.UUID]
    files: list[SyncFile]  # of the custom courses in ``courses``
    more: bool


async def changes(
    storage: SyncStorage, user_id: str, cursor: str | None, page_size: int
) -> SyncPage:
    """The documents changed after ``cursor``, at most ``page_size`` of them; ``cursor`` of
    the answer continues the page (``more``) or is the buyer's counter."""
    async with storage.reading() as reader:
        counter = await reader.counter(user_id)
        after = decode_cursor(cursor, counter)
        if after == counter:  # the frequent answer: nothing changed
            return SyncPage(
                cursor=encode_cursor(counter), courses=[], removed=[], files=[], more=False
            )
        found = await reader.changes(user_id, after=after, upto=counter, limit=page_size + 1)
        more = len(found) > page_size
        page = found[:page_size]
        custom = await reader.custom_courses(user_id, [c.course_id for c in page if not c.removed])
        courses: list[SyncDocument] = []
        removed: list[uuid.UUID] = []
        files: list[SyncFile] = []
        for change in page:
            held = custom.get(change.course_id)
            if held is not None:
                courses.append(custom_document(held))
                files.extend(custom_files(held))
                continue
            snapshot = None if change.removed else await reader.snapshot(user_id, change.course_id)
            if snapshot is not None and holds(snapshot):
                courses.append(course_document(snapshot))
            else:
                removed.append(change.course_id)
    return SyncPage(
        cursor=encode_cursor(page[-1].seq if more else counter),
        courses=courses,
        removed=removed,
        files=files,
        more=more,
    )


class CourseState(msgspec.Struct, frozen=True, kw_only=True):
    course_id: uuid.UUID
    state: StateDoc


class OperationsResult(msgspec.Struct, frozen=True, kw_only=True):
    outcomes: list[OperationOutcome]  # in the order applied
    states: list[CourseState]
    cursor: str
    certificates: list[Certificate]  # issued by these completions: their PDFs are kept next


async def _apply(
    storage: PlayerStorage, user_id: str, operation: Operation, clock: Clock, learner: str | None
) -> Certificate | None:
    course_id, workout_id = operation.course_id, operation.workout_id
    if operation.type == "start":
        await player.start(storage, user_id, course_id, None, clock)
    elif operation.type == "restart":
        await player.restart(storage, user_id, course_id, clock)
    elif operation.type == "complete":
        assert workout_id is not None  # checked at the edge
        done = await player.mark_complete(
            storage,
            user_id,
            course_id,
            workout_id,
            operation.day_offset,
            clock,
            learner,
            offline=True,
        )
        return done.certificate
    else:
        assert workout_id is not None
        await player.unmark_complete(
            storage, user_id, course_id, workout_id, operation.day_offset, clock, offline=True
        )
    return None


async def apply_operations(
    storage: SyncStorage,
    user_id: str,
    operations: Sequence[Operation],
    zone: ZoneInfo,
    now: datetime,
    learner: str | None = None,
) -> OperationsResult:
    """Each operation once (a replayed id reports its first outcome), in :func:`merge_order`,
    in its own transaction; a refusal is reported with its code, the others still apply."""
    outcomes: list[OperationOutcome] = []
    certificates: list[Certificate] = []
    for operation in merge_order(operations):
        async with storage.operation(user_id, operation.id) as slot:
            if slot.replayed is not None:
                outcomes.append(slot.replayed)
                continue
            outcome = OperationOutcome(
                id=operation.id,
                type=operation.type,
                course_id=operation.course_id,
                applied=True,
            )
            try:
                require_not_future(operation.at, now)
                clock = Clock(now=operation.at, zone=zone)
                certificate = await _apply(slot.player, user_id, operation, clock, learner)
            except DomainError as refused:
                outcome = msgspec.structs.replace(
                    outcome, applied=False, code=refused.code, detail=refused.detail
                )
            else:
                if certificate is not None:
                    certificates.append(certificate)
            await slot.record(outcome)
        outcomes.append(outcome)
    async with storage.reading() as reader:
        states = await _states(reader, user_id, [o.course_id for o in outcomes])
        counter = await reader.counter(user_id)
    return OperationsResult(
        outcomes=outcomes, states=states, cursor=encode_cursor(counter), certificates=certificates
    )


async def _states(
    reader: SyncReader, user_id: str, course_ids: list[uuid.UUID]
) -> list[CourseState]:
    states = []
    for course_id in dict.fromkeys(course_ids):
        snapshot = await reader.snapshot(user_id, course_id)
        if snapshot is not None and holds(snapshot):
            states.append(CourseState(course_id=course_id, state=course_state(snapshot)))
    return states


class SanityReport(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    refetch: list[uuid.UUID]
    remove: list[uuid.UUID]
    missing: list[uuid.UUID]


async def sanity(
    storage: SyncStorage, user_id: str, courses: int, checksums: dict[uuid.UUID, str]
) -> SanityReport:
    """Compare what a device holds with the buyer's library (trainer and custom courses): only
    the buyer's own courses are looked at, so a course id of another buyer's is only ever
    "remove"."""
    current: dict[uuid.UUID, str] = {}
    async with storage.reading() as reader:
        for course_id in await reader.held(user_id):
            snapshot = await reader.snapshot(user_id, course_id)
            if snapshot is not None and holds(snapshot):
                current[course_id] = course_document(snapshot).checksum
        current.update(await reader.custom_checksums(user_id))
    refetch = sorted(c for c, s in checksums.items() if c in current and current[c] != s)
    remove = sorted(c for c in checksums if c not in current)
    missing = sorted(c for c in current if c not in checksums)
    ok = not (refetch or remove or missing) and courses == len(current)
    return SanityReport(ok=ok, refetch=refetch, remove=remove, missing=missing)
