"""Reads of the buyer (own purchases and courses), the handshake, and staff listings."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Protocol

import msgspec
import sqlalchemy as sa

from coursemesh.chassis.db import Database
from coursemesh.chassis.errors import NotFound
from coursemesh.customgen.adapters.tables import custom_courses, generation_jobs, purchases
from coursemesh.customgen.app.ports import AudioStore
from coursemesh.customgen.domain.errors import PayloadTooLarge

CourseData = Annotated[
    msgspec.Raw,
    msgspec.Meta(
        description="The course data document (schema_version 1: metadata, scripts, workbooks, "
        "audio_files), as stored: canonical JSON whose MD5 is `checksum` and whose length in "
        "bytes is `fileSizeBytes`."
    ),
]


class PurchaseView(msgspec.Struct, rename="camel", kw_only=True):
    purchase_id: uuid.UUID
    organization_id: uuid.UUID
    offer_id: uuid.UUID
    course_code: str
    title: str
    status: str
    custom_course_id: uuid.UUID | None
    purchased_at: datetime


class Progress(msgspec.Struct, rename="camel", kw_only=True):
    """Where generation stands: the current step (and session), retries, the failed step."""

    step: str
    sessions_done: int
    sessions_total: int
    attempts: int
    failed_step: str | None
    last_error: str | None


class CourseSummary(msgspec.Struct, rename="camel", kw_only=True):
    id: uuid.UUID
    user_id: str
    organization_id: uuid.UUID
    purchase_id: uuid.UUID
    course_code: str
    title: str
    description: str
    status: str
    checksum: str
    file_size_bytes: int
    created_at: datetime
    updated_at: datetime


class CourseDetail(CourseSummary, kw_only=True):
    progress: Progress | None
    data: CourseData
    audio_urls: dict[str, str]
    """audio id -> a URL to fetch it now (public, or presigned with the configured TTL)."""


class SyncedCourse(msgspec.Struct, rename="camel", kw_only=True):
    id: uuid.UUID
    course_code: str
    title: str
    description: str
    checksum: str
    file_size_bytes: int
    updated_at: datetime
    data: CourseData
    """Passed through as stored: the canonical JSON the checksum was taken over."""


class HandshakeResult(msgspec.Struct, rename="camel", kw_only=True):
    changed: list[SyncedCourse]
    missing: list[SyncedCourse]
    removed: list[uuid.UUID]
    unchanged_count: int


_SUMMARY = [
    custom_courses.c.id,
    custom_courses.c.user_id,
    custom_courses.c.organization_id,
    custom_courses.c.purchase_id,
    custom_courses.c.course_code,
    custom_courses.c.title,
    custom_courses.c.description,
    custom_courses.c.status,
    custom_courses.c.checksum,
    custom_courses.c.file_size_bytes,
    custom_courses.c.created_at,
    custom_courses.c.updated_at,
]


def _summary(row: Any) -> CourseSummary:
    return CourseSummary(**{c.name: getattr(row, c.name) for c in _SUMMARY})


async def list_purchases(db: Database, user_id: str) -> list[PurchaseView]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(purchases)
            .where(purchases.c.user_id == user_id)
            .order_by(purchases.c.purchased_at.desc())
        )
        return [
            PurchaseView(
                purchase_id=r.id,
                organization_id=r.organization_id,
                offer_id=r.offer_id,
                course_code=r.course_code,
                title=r.offer_title,
                status=r.status,
                custom_course_id=r.custom_course_id,
                purchased_at=r.purchased_at,
            )
            for r in rows
        ]


async def list_courses(db: Database, user_id: str) -> list[CourseSummary]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(*_SUMMARY)
            .where(custom_courses.c.user_id == user_id)
            .order_by(custom_courses.c.created_at.desc())
        )
        return [_summary(r) for r in rows]


async def list_org_courses(db: Database, organization_id: uuid.UUID) -> list[CourseSummary]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(*_SUMMARY)
            .where(custom_courses.c.organization_id == organization_id)
            .order_by(custom_courses.c.created_at.desc())
        )
        return [_summary(r) for r in rows]


async def get_course(
    db: Database, store: AudioStore, user_id: str, course_id: uuid.UUID
) -> CourseDetail:
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(*_SUMMARY, custom_courses.c.data).where(
                    custom_courses.c.id == course_id, custom_courses.c.user_id == user_id
                )
            )
        ).first()
        if row is None:
            raise NotFound("No such custom course", code="CUSTOM_COURSE_NOT_FOUND")
        job = (
            await conn.execute(
                sa.select(generation_jobs)
                .where(
                    generation_jobs.c.custom_course_id == course_id,
                    generation_jobs.c.kind == "generate",
                )
                .limit(1)
            )
        ).first()
    data = json.loads(row.data)
    progress = None
    if job is not None:
        progress = Progress(
            step="done" if job.status == "done" else job.step,
            sessions_done=len(data["audio_files"]),
            sessions_total=data["metadata"]["intake"]["session_count"],
            attempts=job.attempts,
            failed_step=job.failed_step,
            last_error=job.last_error,
        )
    urls = {a["id"]: await store.download_url(a["object_key"]) for a in data["audio_files"]}
    summary = _summary(row)
    return CourseDetail(
        **msgspec.structs.asdict(summary),
        progress=progress,
        data=msgspec.Raw(row.data.encode()),
        audio_urls=urls,
    )


# One row whatever the number of courses: two arrays in the same (unspecified) order.
_HANDSHAKE_CHECKSUMS_SQL = """
    SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(checksum), '{}')
      FROM custom_courses WHERE user_id = $1 AND status = 'ready'
"""
_HANDSHAKE_COURSES_SQL = """
    SELECT id, course_code, title, description, checksum, file_size_bytes, updated_at,
           data::text AS data
      FROM custom_courses WHERE id = ANY($1::uuid[])
"""


class HeldCopy(Protocol):
    """A course as the client holds it."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def checksum(self) -> str: ...


async def handshake(
    db: Database, user_id: str, held: Sequence[HeldCopy], max_courses: int
) -> HandshakeResult:
    """Compare the client's (id, checksum) pairs with the stored checksums of the buyer's ready
    courses. Only ids and checksums are read for the comparison; the data of changed and
    missing courses is then loaded and passed through undecoded."""
    if len(held) > max_courses:
        raise PayloadTooLarge(
            f"At most {max_courses} courses per handshake", code="HANDSHAKE_TOO_LARGE"
        )
    # An id sent twice counts once, where it was first sent, with the checksum sent last.
    # Keyed by the UUID's int: it hashes and compares in C, where a uuid.UUID against the
    # driver's UUID type goes through Python code (half of this comparison's cost).
    client = {c.id.int: c for c in held}
    # Hot path (every app start of every client): plain driver statements, no transaction.
    async with db.reading() as conn:
        row = await conn.fetchrow(_HANDSHAKE_CHECKSUMS_SQL, user_id)
        assert row is not None  # an aggregate without GROUP BY always answers one row
        ids, checksums = row
        stored = {i.int: s for i, s in zip(ids, checksums, strict=True)}
        changed_ids: list[uuid.UUID] = []
        removed: list[uuid.UUID] = []
        for key, copy in client.items():
            found = stored.get(key)
            if found is None:
                removed.append(copy.id)
            elif found != copy.checksum:
                changed_ids.append(copy.id)
        # Every id the client sent and we store is a distinct stored id: when they are all of
        # them, nothing is missing (the common case, without a lookup per course).
        kept = len(client) - len(removed)
        missing_ids = [] if kept == len(stored) else [i for i in ids if i.int not in client]
        unchanged = kept - len(changed_ids)
        wanted = [*changed_ids, *missing_ids]
        full: dict[uuid.UUID, SyncedCourse] = {}
        if wanted:
            for r in await conn.fetch(_HANDSHAKE_COURSES_SQL, wanted):
                full[r["id"]] = SyncedCourse(
                    id=r["id"],
                    course_code=r["course_code"],
                    title=r["title"],
                    description=r["description"],
                    checksum=r["checksum"],
                    file_size_bytes=r["file_size_bytes"],
                    updated_at=r["updated_at"],
                    data=msgspec.Raw(r["data"].encode()),
                )
    return HandshakeResult(
        changed=[full[i] for i in changed_ids if i in full],
        missing=[full[i] for i in missing_ids if i in full],
        removed=removed,
        unchanged_count=unchanged,
    )
