"""Staff summary of a course: ``GET /organizations/:orgId/courses/:id/summary`` (JSON) and
``…/summary.svg`` (the same figures as a small bar chart, for a dashboard's ``<img>``)."""

from __future__ import annotations

import uuid
from html import escape
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from coursemesh.chassis.auth import Principal, authenticated
from coursemesh.chassis.openapi import problems
from coursemesh.learning.app.staff import CourseSummary, course_summary
from coursemesh.learning.bootstrap import runtime
from coursemesh.learning.domain.model import Clock
from coursemesh.learning.http.schemas import CourseSummaryOut

SVG = "image/svg+xml"
_WIDTH, _BAR_X, _BAR_MAX, _ROW = 420, 150, 200, 28


def summary_out(summary: CourseSummary) -> CourseSummaryOut:
    return CourseSummaryOut(
        enrolled=summary.enrolled,
        started=summary.started,
        active_last_7_days=summary.active_last_7_days,
        completed=summary.completed,
        median_adherence_percent=summary.median_adherence_percent,
    )


def summary_svg(summary: CourseSummary) -> str:
    """Four buyer counts as bars against ``enrolled``, and the median adherence against 100 %.
    Every text is escaped: the course name is the trainer's."""
    scale = max(summary.enrolled, 1)
    median = summary.median_adherence_percent
    bars: list[tuple[str, int, float, str]] = [
        ("Enrolled", summary.enrolled, summary.enrolled / scale, str(summary.enrolled)),
        ("Started", summary.started, summary.started / scale, str(summary.started)),
        (
            "Active (7 days)",
            summary.active_last_7_days,
            summary.active_last_7_days / scale,
            str(summary.active_last_7_days),
        ),
        ("Completed", summary.completed, summary.completed / scale, str(summary.completed)),
        (
            "Median adherence",
            median or 0,
            (median or 0) / 100,
            "n/a" if median is None else f"{median} %",
        ),
    ]
    title = escape(summary.course_name or "Course")
    height = 40 + _ROW * len(bars)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img" aria-labelledby="t">',
        f'<title id="t">{title}: buyers and adherence</title>',
        "<style>text{font:12px sans-serif;fill:#222}</style>",
        f'<text x="8" y="20" font-weight="bold">{title}</text>',
    ]
    for n, (label, _value, share, shown) in enumerate(bars):
        y = 36 + n * _ROW
        width = round(_BAR_MAX * min(max(share, 0.0), 1.0))
        parts.append(f'<text x="8" y="{y + 14}">{escape(label)}</text>')
        parts.append(f'<rect x="{_BAR_X}" y="{y}" width="{width}" height="18" fill="#3b82f6"/>')
        parts.append(f'<text x="{_BAR_X + width + 6}" y="{y + 14}">{escape(shown)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


class SummaryController(Controller):
    path = "/organizations/{org_id:uuid}/courses/{course_id:uuid}"
    guards = [authenticated]

    @get("/summary", opt=problems((404, "COURSE_NOT_FOUND")))
    async def summary(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        org_id: FromPath[uuid.UUID],
        course_id: FromPath[uuid.UUID],
    ) -> CourseSummaryOut:
        found = await course_summary(
            runtime(request).staff, principal.sub, org_id, course_id, clock
        )
        return summary_out(found)

    @get("/summary.svg", media_type=SVG, opt=problems((404, "COURSE_NOT_FOUND")))
    async def summary_chart(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        org_id: FromPath[uuid.UUID],
        course_id: FromPath[uuid.UUID],
    ) -> Response[str]:
        found = await course_summary(
            runtime(request).staff, principal.sub, org_id, course_id, clock
        )
        return Response(summary_svg(found), media_type=SVG)
