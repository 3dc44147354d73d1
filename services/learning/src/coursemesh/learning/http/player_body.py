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
from coursemesh.learning.domain.model import Curriculum, Workout
from coursemesh.learning.domain.player import CourseView, current_day_offset, dense_days
from coursemesh.learning.http.schemas import (
    EntitlementOut,
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
    days = _player_days(view.curriculum, view.length, done)
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
        current_day_offset=_current_day_offset(view),
        days=days,
        completed_course_workout_ids=sorted({uuid.UUID(w) for w in view.completed_workout_ids}),
        completed_item_ids=sorted(done),
        progress=Progress(completed=len(done), total=sum(len(d.items) for d in days)),
        certificate_id=view.certificate_id,
    )


def _player_days(curriculum: Curriculum, length: int, done: set[uuid.UUID]) -> list[PlayerDay]:
    summaries = {w: _summary(workout) for w, workout in curriculum.workouts.items()}
    return [
        PlayerDay(
            day_offset=day.day_offset,
            is_rest=day.is_rest,
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


def _current_day_offset(view: CourseView) -> int | None:
    start_date = None if view.enrollment is None else view.enrollment.start_date
    return current_day_offset(start_date, view.today)


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


def render_days(curriculum: Curriculum, length: int) -> RenderedDays:
    days = _player_days(curriculum, length, set())
    body = _encoder.encode(days)
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
    return RenderedDays(body=body, flags=flags, total=sum(len(d.items) for d in days))


def _items(days: list[PlayerDay]) -> Iterator[PlayerItem]:
    for day in days:
        yield from day.items


def _days_with(days: RenderedDays, completed_item_ids: Sequence[str]) -> list[bytes | memoryview]:
    """The rendered days with the completed items' ``false`` turned ``true``, as parts."""
    flags = days.flags
    offsets = sorted(at for i in completed_item_ids for at in flags.get(i, ()))
    body = memoryview(days.body)
    parts: list[bytes | memoryview] = []
    start = 0
    for at in offsets:
        parts.append(body[start:at])
        parts.append(_TRUE)
        start = at + len(_FALSE)
    parts.append(body[start:])
    return parts


def render_player_course(view: CourseView, courses: CourseReadModel) -> bytes:
    """The answer's JSON: the same bytes as ``player_course(view)`` encoded; the days rendered
    once per curriculum copy and length (``courses`` keeps them)."""
    course = view.course
    days = courses.rendered(course.course_id, view.curriculum, view.length, render_days)
    head = PlayerCourseHead(
        course_id=course.course_id,
        organization_id=course.organization_id,
        name=course.name,
        image_url=course.image_url,
        course_status=course.status,
        duration_days=view.length,
        curriculum_version=course.curriculum_version,
        entitlement=_entitlement_out(view),
        current_day_offset=_current_day_offset(view),
    )
    tail = PlayerCourseTail(
        completed_course_workout_ids=view.completed_workout_ids,
        completed_item_ids=view.completed_item_ids,
        progress=Progress(completed=len(view.completed_item_ids), total=days.total),
        certificate_id=view.certificate_id,
    )
    # `{head}` and `{tail}` always have fields, so dropping the brace between them leaves
    # `{head,"days":[...],tail}`.
    return b"".join(
        [
            memoryview(_encoder.encode(head))[:-1],
            b',"days":',
            *_days_with(days, view.completed_item_ids),
            b",",
            memoryview(_encoder.encode(tail))[1:],
        ]
    )
