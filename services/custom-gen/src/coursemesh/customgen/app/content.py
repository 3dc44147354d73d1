"""What a buyer's devices hold of a ready custom course, announced with every change of it.

Staged in the transaction that makes the course ready or changes its data, so a consumer's
offline copy can never lag behind a checksum the handshake already answers.
"""

from __future__ import annotations

from coursemesh.chassis.transaction import EventSink
from coursemesh.contracts.customgen import CourseFile, CustomCourseContent
from coursemesh.customgen.domain.course import StoredCourse, calculate_checksum
from coursemesh.customgen.domain.files import build_manifest


def content_of(course: StoredCourse, version: int) -> CustomCourseContent:
    """Built from the stored data: the document is its canonical JSON, the very bytes the
    checksum is over, and the files are the manifest's."""
    stored = calculate_checksum(course.data)
    manifest = build_manifest(course.id, stored.checksum, course.data)
    return CustomCourseContent(
        custom_course_id=course.id,
        user_id=course.user_id,
        organization_id=course.organization_id,
        version=version,
        checksum=stored.checksum,
        file_size_bytes=stored.size_bytes,
        document=stored.text,
        files=[
            CourseFile(
                file_id=f.file_id,
                session=f.session,
                md5=f.md5,
                sha256=f.sha256,
                size_bytes=f.size_bytes,
                content_type=f.content_type,
            )
            for f in manifest.files
        ],
    )


def publish_content(events: EventSink, course: StoredCourse, version: int) -> None:
    """``version`` is the course row's after this change: a consumer keeps the newest."""
    events.publish(content_of(course, version), aggregate_id=course.id, aggregate_version=version)
