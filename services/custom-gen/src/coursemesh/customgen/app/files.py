"""The files of a buyer's course: the manifest (what to hold and how to verify it) and the
download of one file through the service, in ranges, conditional on its ETag."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from coursemesh.chassis.errors import NotFound
from coursemesh.customgen.app.ports import AudioStore, AudioStream, CourseStore
from coursemesh.customgen.app.views import FileManifestView, ManifestFileView
from coursemesh.customgen.domain.course import AudioEntry, find_audio
from coursemesh.customgen.domain.files import (
    Delivery,
    PartOfFile,
    WholeFile,
    build_manifest,
    plan_delivery,
)


def _no_course() -> NotFound:
    return NotFound("No such custom course", code="CUSTOM_COURSE_NOT_FOUND")


async def file_manifest(
    store: CourseStore, audio: AudioStore, user_id: str, course_id: uuid.UUID
) -> FileManifestView:
    async with store.reading() as reader:
        course = await reader.course_document(user_id, course_id)
    if course is None:
        raise _no_course()
    manifest = build_manifest(course_id, course.summary.checksum, json.loads(course.data))
    files = []
    for file in manifest.files:
        link = await audio.download_link(file.object_key)
        files.append(
            ManifestFileView(
                file_id=file.file_id,
                session=file.session,
                md5=file.md5,
                sha256=file.sha256,
                size_bytes=file.size_bytes,
                content_type=file.content_type,
                path=file.path,
                url=link.url,
                url_expires_at=link.expires_at,
            )
        )
    return FileManifestView(
        custom_course_id=manifest.custom_course_id, checksum=manifest.checksum, files=files
    )


@dataclass(frozen=True, slots=True)
class FileDownload:
    """What a download answers: the plan, the file it is about, and its bytes when sent."""

    entry: AudioEntry
    delivery: Delivery
    body: AudioStream | None


async def download_file(
    store: CourseStore,
    audio: AudioStore,
    *,
    user_id: str,
    course_id: uuid.UUID,
    file_id: str,
    range_header: str | None,
    if_none_match: str | None,
    if_range: str | None,
) -> FileDownload:
    async with store.reading() as reader:
        course = await reader.course_document(user_id, course_id)
    if course is None:
        raise _no_course()
    entry = find_audio(json.loads(course.data), file_id)
    if entry is None:
        raise NotFound("No such file in this course", code="FILE_NOT_FOUND")
    delivery = plan_delivery(
        entry, range_header=range_header, if_none_match=if_none_match, if_range=if_range
    )
    body: AudioStream | None = None
    if isinstance(delivery, WholeFile):
        body = await audio.open(entry.object_key)
    elif isinstance(delivery, PartOfFile):
        body = await audio.open(entry.object_key, delivery.first, delivery.last)
    return FileDownload(entry, delivery, body)
