"""Staff drill-down: ``GET /organizations/:orgId/courses/:id/enrollments`` (JSON or CSV)."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from coursemesh.chassis.auth import Principal, authenticated
from coursemesh.chassis.errors import mark_negative
from coursemesh.chassis.openapi import also_served_as, problems
from coursemesh.chassis.paging import Offset
from coursemesh.learning.app.ports import SortKey
from coursemesh.learning.app.staff import EnrolledBuyer, FigureKey, course_enrollments
from coursemesh.learning.bootstrap import runtime
from coursemesh.learning.domain.model import Clock
from coursemesh.learning.http.player_body import pauses_out
from coursemesh.learning.http.schemas import StaffEnrollment, StaffEnrollmentPage

Sort = Literal[
    "lastActivityAt",
    "-lastActivityAt",
    "startDate",
    "-startDate",
    "completedCount",
    "-completedCount",
    "userId",
    "-userId",
    "adherencePercent",
    "-adherencePercent",
    "currentStreak",
    "-currentStreak",
    "longestStreak",
    "-longestStreak",
]
CSV_COLUMNS = (
    "entitlementId",
    "userId",
    "startDate",
    "currentDayOffset",
    "completedCount",
    "totalCount",
    "completedAt",
    "restartCount",
    "lastActivityAt",
    "adherencePercent",
    "currentStreak",
    "longestStreak",
)


def _row(buyer: EnrolledBuyer) -> StaffEnrollment:
    row, plan, figures = buyer.row, buyer.schedule, buyer.adherence
    return StaffEnrollment(
        entitlement_id=row.entitlement_id,
        user_id=row.user_id,
        start_date=row.start_date,
        current_day_offset=plan.current_day_offset,
        completed_count=row.completed_items,
        total_count=row.total_items,
        completed_at=row.completed_at,
        restart_count=row.restart_count,
        last_activity_at=row.last_activity_at,
        adherence_percent=figures.adherence_percent,
        current_streak=figures.current_streak,
        longest_streak=figures.longest_streak,
        paused=plan.paused,
        paused_since=plan.paused_since,
        unlocked_at=row.unlocked_at,
        unlocked_by=row.unlocked_by,
        unlock_reason=row.unlock_reason,
        pauses=pauses_out(row.pauses),
    )


def _csv(rows: list[StaffEnrollment]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                r.entitlement_id,
                r.user_id,
                "" if r.start_date is None else r.start_date.isoformat(),
                "" if r.current_day_offset is None else r.current_day_offset,
                r.completed_count,
                r.total_count,
                "" if r.completed_at is None else r.completed_at.isoformat(),
                r.restart_count,
                "" if r.last_activity_at is None else r.last_activity_at.isoformat(),
                "" if r.adherence_percent is None else r.adherence_percent,
                r.current_streak,
                r.longest_streak,
            ]
        )
    return buffer.getvalue()


class StaffController(Controller):
    path = "/organizations/{org_id:uuid}/courses/{course_id:uuid}/enrollments"
    guards = [authenticated]

    @get("/", opt={**problems((404, "COURSE_NOT_FOUND")), **also_served_as("text/csv")})
    async def list_enrollments(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        org_id: FromPath[uuid.UUID],
        course_id: FromPath[uuid.UUID],
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        offset: Offset = 0,
        sort: FromQuery[Sort] = "-lastActivityAt",
        output: Annotated[Literal["json", "csv"], QueryParameter(name="format")] = "json",
    ) -> Response[StaffEnrollmentPage] | Response[str]:
        export = output == "csv"
        key: SortKey | FigureKey = sort.removeprefix("-")  # type: ignore[assignment]
        page = await course_enrollments(
            runtime(request).staff,
            principal.sub,
            org_id,
            course_id,
            sort=key,
            descending=sort.startswith("-"),
            # The export holds every buyer; the JSON view pages.
            limit=None if export else limit,
            offset=0 if export else offset,
            clock=clock,
        )
        rows = [_row(b) for b in page.buyers]
        if not page.total:  # buyers arrive by commerce's events: "none" only once caught up
            mark_negative(request.scope)
        if export:
            return Response(
                _csv(rows),
                media_type="text/csv",  # Litestar adds the charset of text types
                headers={
                    "Content-Disposition": f'attachment; filename="enrollments-{course_id}.csv"'
                },
            )
        return Response(
            StaffEnrollmentPage(items=rows, total=page.total, limit=limit, offset=offset)
        )
