"""Staff use case: the per-buyer drill-down of a course."""

from __future__ import annotations

import uuid

import msgspec

from coursemesh.chassis.errors import NotFound
from coursemesh.chassis.staff import require_staff
from coursemesh.learning.app.ports import EnrollmentRow, SortKey, StaffStorage


class EnrollmentPage(msgspec.Struct, frozen=True, kw_only=True):
    rows: list[EnrollmentRow]
    total: int
    max_pause_days: int | None = None  # the course's limit: how far a pause counts


def _not_found() -> NotFound:
    # Non-staff and other organizations' courses get the same 404: nothing to learn by probing.
    return NotFound("No such course in this organization", code="COURSE_NOT_FOUND")


async def course_enrollments(
    storage: StaffStorage,
    staff_user_id: str,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    *,
    sort: SortKey,
    descending: bool,
    limit: int | None,
    offset: int,
) -> EnrollmentPage:
    async with storage.transaction() as tx:
        if await tx.store.course_organization(course_id) != organization_id:
            raise _not_found()
        await require_staff(tx.directory, organization_id, staff_user_id, refusal=_not_found())
        rows, total = await tx.store.enrollment_rows(
            course_id, sort=sort, descending=descending, limit=limit, offset=offset
        )
        course = await tx.store.course(course_id) if any(r.pauses for r in rows) else None
    return EnrollmentPage(
        rows=rows,
        total=total,
        max_pause_days=None if course is None else course.details.max_pause_days,
    )
