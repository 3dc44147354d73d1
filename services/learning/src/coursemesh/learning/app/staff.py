"""Staff use case: the per-buyer drill-down of a course."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal, get_args

import msgspec

from coursemesh.chassis.errors import NotFound
from coursemesh.chassis.staff import require_staff
from coursemesh.learning.app.ports import EnrollmentRow, SortKey, StaffStorage
from coursemesh.learning.domain.adherence import (
    Adherence,
    PlannedDay,
    enrollment_adherence,
    median_percent,
    planned_days,
)
from coursemesh.learning.domain.model import Clock, Course
from coursemesh.learning.domain.player import curriculum_length
from coursemesh.learning.domain.schedule import Schedule, run_pauses, schedule_of_row

#: Sorts on figures computed per buyer (in the buyer's zone of the request), not stored ones.
FigureKey = Literal["adherencePercent", "currentStreak", "longestStreak"]
FIGURE_KEYS: frozenset[str] = frozenset(get_args(FigureKey))


class EnrolledBuyer(msgspec.Struct, frozen=True, kw_only=True):
    row: EnrollmentRow
    schedule: Schedule  # where the buyer is today
    adherence: Adherence


class EnrollmentPage(msgspec.Struct, frozen=True, kw_only=True):
    buyers: list[EnrolledBuyer]
    total: int

    @property
    def rows(self) -> list[EnrollmentRow]:
        return [b.row for b in self.buyers]


def _not_found() -> NotFound:
    # Non-staff and other organizations' courses get the same 404: nothing to learn by probing.
    return NotFound("No such course in this organization", code="COURSE_NOT_FOUND")


async def course_enrollments(
    storage: StaffStorage,
    staff_user_id: str,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    *,
    sort: SortKey | FigureKey,
    descending: bool,
    limit: int | None,
    offset: int,
    clock: Clock,
) -> EnrollmentPage:
    """A page of the course's buyers. A sort on a figure reads every buyer (the figures depend
    on the curriculum and the zone of the request, so the database cannot order them) and
    pages here, with the database's conventions: missing values last, ties by entitlement id."""
    by_figure = sort in FIGURE_KEYS
    buyers, total, _course = await _enrolled(
        storage,
        staff_user_id,
        organization_id,
        course_id,
        sort="userId" if by_figure else sort,  # type: ignore[arg-type]
        descending=False if by_figure else descending,
        limit=None if by_figure else limit,
        offset=0 if by_figure else offset,
        clock=clock,
    )
    if by_figure:
        buyers = _sorted(buyers, sort, descending)
        buyers = buyers[offset:] if limit is None else buyers[offset : offset + limit]
    return EnrollmentPage(buyers=buyers, total=total)


async def _enrolled(
    storage: StaffStorage,
    staff_user_id: str,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    *,
    sort: SortKey,
    descending: bool,
    limit: int | None,
    offset: int,
    clock: Clock,
) -> tuple[list[EnrolledBuyer], int, Course | None]:
    async with storage.transaction() as tx:
        if await tx.store.course_organization(course_id) != organization_id:
            raise _not_found()
        await require_staff(tx.directory, organization_id, staff_user_id, refusal=_not_found())
        rows, total = await tx.store.enrollment_rows(
            course_id, sort=sort, descending=descending, limit=limit, offset=offset
        )
        course = await tx.store.course(course_id)
    max_pause_days = None if course is None else course.details.max_pause_days
    planned = (
        ()
        if course is None
        else planned_days(course.days, curriculum_length(course.days, course.details.duration_days))
    )
    return [_buyer(row, planned, clock, max_pause_days) for row in rows], total, course


#: What "active lately" means on the summary.
ACTIVE_WINDOW = timedelta(days=7)


class CourseSummary(msgspec.Struct, frozen=True, kw_only=True):
    course_name: str | None
    enrolled: int  # active entitlements: the drill-down's buyers
    started: int  # with a start date
    active_last_7_days: int  # a player write (start, completion, restart) in the last 7 days
    completed: int  # the current run completed
    median_adherence_percent: int | None  # of the buyers with something due


async def course_summary(
    storage: StaffStorage,
    staff_user_id: str,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    clock: Clock,
) -> CourseSummary:
    """The course's buyers in five figures (the drill-down's access rule and rows)."""
    buyers, total, course = await _enrolled(
        storage,
        staff_user_id,
        organization_id,
        course_id,
        sort="userId",
        descending=False,
        limit=None,
        offset=0,
        clock=clock,
    )
    since = clock.now - ACTIVE_WINDOW
    rows = [b.row for b in buyers]
    return CourseSummary(
        course_name=None if course is None else course.details.name,
        enrolled=total,
        started=sum(1 for r in rows if r.start_date is not None),
        active_last_7_days=sum(
            1 for r in rows if r.last_activity_at is not None and r.last_activity_at > since
        ),
        completed=sum(1 for r in rows if r.completed_at is not None),
        median_adherence_percent=median_percent(
            [p for b in buyers if (p := b.adherence.adherence_percent) is not None]
        ),
    )


def _buyer(
    row: EnrollmentRow, planned: Sequence[PlannedDay], clock: Clock, max_pause_days: int | None
) -> EnrolledBuyer:
    pauses = run_pauses(row.pauses, row.restart_count)
    plan = schedule_of_row(row.start_date, pauses, clock.today, max_pause_days)
    return EnrolledBuyer(
        row=row,
        schedule=plan,
        adherence=enrollment_adherence(
            planned,
            row.completions,
            clock.zone,
            row.start_date,
            plan.current_day_offset,
            pauses,
            max_pause_days,
        ),
    )


def _figure(buyer: EnrolledBuyer, key: str) -> int | None:
    figures = buyer.adherence
    if key == "adherencePercent":
        return figures.adherence_percent
    return figures.current_streak if key == "currentStreak" else figures.longest_streak


def _sorted(buyers: list[EnrolledBuyer], key: str, descending: bool) -> list[EnrolledBuyer]:
    def order(buyer: EnrolledBuyer) -> tuple[bool, int, uuid.UUID]:
        value = _figure(buyer, key)
        if value is None:
            return (True, 0, buyer.row.entitlement_id)
        return (False, -value if descending else value, buyer.row.entitlement_id)

    return sorted(buyers, key=order)
