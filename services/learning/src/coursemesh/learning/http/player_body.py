"""The body of ``GET /me/courses/:id``, two ways that give the same bytes.

- :func:`player_course` builds the documented response Struct field by field: the reference.
- :func:`render_player_course` is what the route sends. The days (every item with its workout
  summary: the bulk of the answer) are the same for every buyer of a curriculum, so they are
  rendered once per curriculum copy with no item completed (kept by the course read model,
  ``app/courses.py``), remembering where each item's ``false`` is; a request then turns the
  completed items' ``false`` into ``true`` and encodes the few per-buyer fields around the
  days, instead of building and encoding a Struct per item.

``tests/test_player_body.py`` holds the two to equal bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import msgspec

from coursemesh.learning.app.courses import CourseReadModel
from coursemesh.learning.domain.adherence import (
    NOTHING_DUE,
    Adherence,
    PlannedDay,
    enrollment_adherence,
    planned_days,
)
from coursemesh.learning.domain.model import Curriculum, Pause, Workout
from coursemesh.learning.domain.player import CourseView, dense_days
from coursemesh.learning.domain.schedule import Schedule, run_pauses, schedule
from coursemesh.learning.http.schemas import (
    EntitlementOut,
    PauseOut,
    PlayerCourse,
    PlayerCourseHead,
    PlayerCourseTail,
    PlayerDay,
    PlayerItem,
    Progress,
    WorkoutSummary,
)

# Litestar encodes a returned Struct with msgspec, whose hook these types never reach: the same
# bytes as this plain encoder.
_encoder = msgspec.json.Encoder()


# --- the reference: the whole answer as Structs -----------------------------------------------


def player_course(view: CourseView) -> PlayerCourse:
    done = {uuid.UUID(i) for i in view.completed_item_ids}
    plan = _schedule(view)
    days = _player_days(view.curriculum, view.length, done, plan)
    total = sum(len(d.items) for d in dense_days(view.length, view.curriculum.days))
    figures = _adherence(view, plan, planned_days(view.curriculum.days, view.length))
    course = view.course
    return PlayerCourse(
        course_id=course.course_id,
        organization_id=course.organization_id,
        name=course.name,
        image_url=course.image_url,
        course_status=course.status,
        duration_days=view.length,
        curriculum_version=course.curriculum_version,
        entitlement=_entitlement_out(view),
        current_day_offset=plan.current_day_offset,
        release_mode=plan.release_mode,
        paused=plan.paused,
        paused_since=plan.paused_since,
        paused_days=plan.paused_days,
        unlocked=plan.unlocked,
        days=days,
        completed_course_workout_ids=sorted({uuid.UUID(w) for w in view.completed_workout_ids}),
        completed_item_ids=sorted(done),
        progress=Progress(completed=len(done), total=total),
        adherence_percent=figures.adherence_percent,
        current_streak=figures.current_streak,
        longest_streak=figures.longest_streak,
        pauses=pauses_out(view.pauses),
        certificate_id=view.certificate_id,
    )


def _schedule(view: CourseView) -> Schedule:
    return schedule(view.course, view.enrollment, view.pauses, view.today)


def _adherence(view: CourseView, plan: Schedule, planned: Sequence[PlannedDay]) -> Adherence:
    if plan.start_date is None or not planned:
        return NOTHING_DUE
    assert view.enrollment is not None  # a start date is the enrollment's
    return enrollment_adherence(
        planned,
        zip(view.completed_item_ids, view.completed_times, strict=True),
        view.zone,
        plan.start_date,
        plan.current_day_offset,
        run_pauses(view.pauses, view.enrollment.restart_count) if view.pauses else (),
        view.course.max_pause_days,
    )


def pauses_out(pauses: list[Pause]) -> list[PauseOut]:
    return [
        PauseOut(
            run=p.run,
            paused_on=p.paused_on,
            paused_at=p.paused_at,
            paused_by=p.paused_by,
            resumed_on=p.resumed_on,
            resumed_at=p.resumed_at,
            resumed_by=p.resumed_by,
            days=p.days,
        )
        for p in pauses
    ]


def _locked_day(day_offset: int, is_rest: bool, plan: Schedule) -> PlayerDay:
    return PlayerDay(
        day_offset=day_offset,
        is_rest=is_rest,
        locked=True,
        opens_on=plan.opens_on(day_offset),
        items=[],
    )


def _player_days(
    curriculum: Curriculum, length: int, done: set[uuid.UUID], plan: Schedule | None = None
) -> list[PlayerDay]:
    summaries = {w: _summary(workout) for w, workout in curriculum.workouts.items()}
    return [
        _locked_day(day.day_offset, day.is_rest, plan)
        if plan is not None and plan.locked(day.day_offset)
        else PlayerDay(
            day_offset=day.day_offset,
            is_rest=day.is_rest,
            locked=False,
            opens_on=None,
            items=[
                PlayerItem(
                    item_id=item.item_id,
                    workout_id=item.workout_id,
                    position=item.position,
                    completed=item.item_id in done,
                    workout=summaries.get(item.workout_id),
                )
                for item in day.items
            ],
        )
        for day in dense_days(length, curriculum.days)
    ]


def _summary(workout: Workout) -> WorkoutSummary:
    return WorkoutSummary(
        title=workout.title,
        description=workout.description,
        duration_minutes=workout.duration_minutes,
    )


def _entitlement_out(view: CourseView) -> EntitlementOut:
    enrollment = view.enrollment
    if enrollment is None:
        return EntitlementOut(
            id=view.entitlement.entitlement_id,
            status=view.entitlement.status,
            start_date=None,
            completed_at=None,
            restart_count=0,
            last_activity_at=None,
        )
    return EntitlementOut(
        id=view.entitlement.entitlement_id,
        status=view.entitlement.status,
        start_date=enrollment.start_date,
        completed_at=enrollment.completed_at,
        restart_count=enrollment.restart_count,
        last_activity_at=enrollment.last_activity_at,
    )


# --- what the route sends: pre-rendered days, per-buyer fields around them --------------------

_FLAG = b'"completed":'
_FALSE = b"false"
_TRUE = b"true"


@dataclass(frozen=True, slots=True)
class RenderedDays:
    """The ``days`` array of one curriculum copy with no item completed."""

    body: bytes
    flags: dict[str, tuple[int, ...]]  # item id -> where its ``false`` is (each occurrence)
    total: int  # workout items: the progress total
    starts: tuple[int, ...]  # where each day's object begins
    rest: tuple[bool, ...]  # each day's rest flag, for a day shown locked
    planned: tuple[PlannedDay, ...]  # the workout days, for adherence


def render_days(curriculum: Curriculum, length: int) -> RenderedDays:
    days = _player_days(curriculum, length, set())
    # The array encoded day by day, to know where each begins (the same bytes as at once).
    encoded = [_encoder.encode(d) for d in days]
    starts: list[int] = []
    at = 1
    for part in encoded:
        starts.append(at)
        at += len(part) + 1
    body = b"[" + b",".join(encoded) + b"]"
    flags: dict[str, tuple[int, ...]] = {}
    # The n-th `"completed":` is the n-th item's: no other key has that name, and a quote
    # inside a string value is always escaped, so the pattern cannot occur within one.
    at = 0
    for item in _items(days):
        at = body.index(_FLAG, at) + len(_FLAG)
        if not body.startswith(_FALSE, at):
            raise AssertionError("an item's `completed` did not render as false")
        key = str(item.item_id)
        flags[key] = (*flags.get(key, ()), at)
    return RenderedDays(
        body=body,
        flags=flags,
        total=sum(len(d.items) for d in days),
        starts=tuple(starts),
        rest=tuple(d.is_rest for d in days),
        planned=planned_days(curriculum.days, length),
    )


def _items(days: list[PlayerDay]) -> Iterator[PlayerItem]:
    for day in days:
        yield from day.items


def _days_with(
    days: RenderedDays, completed_item_ids: Sequence[str], plan: Schedule
) -> list[bytes | memoryview]:
    """The rendered days with the completed items' ``false`` turned ``true``, as parts; the
    days the schedule locks (always the last ones) encoded for this buyer instead."""
    flags = days.flags
    first_locked = plan.first_locked(len(days.starts))
    end = len(days.body) if first_locked == len(days.starts) else days.starts[first_locked]
    offsets = sorted(at for i in completed_item_ids for at in flags.get(i, ()) if at < end)
    body = memoryview(days.body)
    parts: list[bytes | memoryview] = []
    start = 0
    for at in offsets:
        parts.append(body[start:at])
        parts.append(_TRUE)
        start = at + len(_FALSE)
    parts.append(body[start:end])
    if end < len(days.body):
        locked = [
            _locked_day(offset, days.rest[offset], plan)
            for offset in range(first_locked, len(days.starts))
        ]
        parts.append(memoryview(_encoder.encode(locked))[1:])  # `{…},{…}]`: after `[` or `,`
    return parts


def render_player_course(view: CourseView, courses: CourseReadModel) -> bytes:
    """The answer's JSON: the same bytes as ``player_course(view)`` encoded; the days rendered
    once per curriculum copy and length (``courses`` keeps them)."""
    course = view.course
    days = courses.rendered(course.course_id, view.curriculum, view.length, render_days)
    plan = _schedule(view)
    figures = _adherence(view, plan, days.planned)
    head = PlayerCourseHead(
        course_id=course.course_id,
        organization_id=course.organization_id,
        name=course.name,
        image_url=course.image_url,
        course_status=course.status,
        duration_days=view.length,
        curriculum_version=course.curriculum_version,
        entitlement=_entitlement_out(view),
        current_day_offset=plan.current_day_offset,
        release_mode=plan.release_mode,
        paused=plan.paused,
        paused_since=plan.paused_since,
        paused_days=plan.paused_days,
        unlocked=plan.unlocked,
    )
    tail = PlayerCourseTail(
        completed_course_workout_ids=view.completed_workout_ids,
        completed_item_ids=view.completed_item_ids,
        progress=Progress(completed=len(view.completed_item_ids), total=days.total),
        adherence_percent=figures.adherence_percent,
        current_streak=figures.current_streak,
        longest_streak=figures.longest_streak,
        pauses=pauses_out(view.pauses) if view.pauses else [],
        certificate_id=view.certificate_id,
    )
    # `{head}` and `{tail}` always have fields, so dropping the brace between them leaves
    # `{head,"days":[...],tail}`.
    return b"".join(
        [
            memoryview(_encoder.encode(head))[:-1],
            b',"days":',
            *_days_with(days, view.completed_item_ids, plan),
            b",",
            memoryview(_encoder.encode(tail))[1:],
        ]
    )
