"""Staff use case: the per-buyer drill-down of a course."""

from __future__ import annotations

import uuid

import msgspec

from coursemesh.chassis.errors import NotFound
from coursemesh.learning.app.ports import EnrollmentRow, SortKey, StaffStore


class EnrollmentPage(msgspec.Struct, frozen=True, kw_only=True):
    rows: list[EnrollmentRow]
    total: int


async def course_enrollments(
    store: StaffStore,
    staff_user_id: str,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    *,
    sort: SortKey,
    descending: bool,
    limit: int | None,
    offset: int,
) -> EnrollmentPage:
    # Non-staff and other organizations' courses get the same 404: nothing to learn by probing.
    course = await store.course(course_id)
    if (
        course is None
        or course.organization_id != organization_id
        or not await store.is_staff(organization_id, staff_user_id)
    ):
        raise NotFound("No such course in this organization", code="COURSE_NOT_FOUND")
    rows, total = await store.enrollment_rows(
        course_id, sort=sort, descending=descending, limit=limit, offset=offset
    )
    return EnrollmentPage(rows=rows, total=total)
