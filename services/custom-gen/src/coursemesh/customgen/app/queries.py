"""Reads of the buyer (own purchases and courses), the handshake, and staff listings."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

import msgspec

from coursemesh.chassis.errors import NotFound
from coursemesh.chassis.staff import require_staff
from coursemesh.customgen.app.ports import AudioStore, CourseStore, HandshakeStore
from coursemesh.customgen.app.views import (
    CourseDetail,
    CourseSummary,
    HandshakeResult,
    Progress,
    PurchaseView,
)
from coursemesh.customgen.domain.handshake import HeldCopy, check_handshake_size, diff_handshake


async def list_purchases(store: CourseStore, user_id: str) -> list[PurchaseView]:
    async with store.reading() as reader:
        return await reader.purchases(user_id)


async def list_courses(store: CourseStore, user_id: str) -> list[CourseSummary]:
    async with store.reading() as reader:
        return await reader.courses_of_buyer(user_id)


async def list_org_courses(
    store: CourseStore, *, staff_user_id: str, organization_id: uuid.UUID
) -> list[CourseSummary]:
    async with store.reading() as reader:
        await require_staff(reader, organization_id, staff_user_id)
        return await reader.courses_of_organization(organization_id)


async def get_course(
    store: CourseStore, audio: AudioStore, user_id: str, course_id: uuid.UUID
) -> CourseDetail:
    async with store.reading() as reader:
        course = await reader.course_document(user_id, course_id)
    if course is None:
        raise NotFound("No such custom course", code="CUSTOM_COURSE_NOT_FOUND")
    data = json.loads(course.data)
    progress = None
    if course.job is not None:
        job = course.job
        progress = Progress(
            step="done" if job.status == "done" else job.step,
            sessions_done=len(data["audio_files"]),
            sessions_total=data["metadata"]["intake"]["session_count"],
            attempts=job.attempts,
            failed_step=job.failed_step,
            last_error=job.last_error,
        )
    urls = {a["id"]: await audio.download_url(a["object_key"]) for a in data["audio_files"]}
    return CourseDetail(
        **msgspec.structs.asdict(course.summary),
        progress=progress,
        data=msgspec.Raw(course.data.encode()),
        audio_urls=urls,
    )


async def handshake(
    store: HandshakeStore, user_id: str, held: Sequence[HeldCopy], max_courses: int
) -> HandshakeResult:
    """Compare the client's (id, checksum) pairs with the stored checksums of the buyer's ready
    courses. Only ids and checksums are read for the comparison; the data of changed and
    missing courses is then loaded and passed through undecoded."""
    check_handshake_size(held, max_courses)
    async with store.reading() as reader:
        ids, checksums = await reader.ready_checksums(user_id)
        diff = diff_handshake(held, ids, checksums)
        wanted = [*diff.changed, *diff.missing]
        full = {c.id: c for c in await reader.synced_courses(wanted)} if wanted else {}
    return HandshakeResult(
        changed=[full[i] for i in diff.changed if i in full],
        missing=[full[i] for i in diff.missing if i in full],
        removed=diff.removed,
        unchanged_count=diff.unchanged_count,
    )
