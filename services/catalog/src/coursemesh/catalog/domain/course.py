"""Courses (pure): the lifecycle, the curriculum rules, and what each command emits.

A course is one aggregate whose ``version`` counts its events (+1 per event, every course event
shares the counter); ``curriculum_version`` counts curriculum changes (every set-day and every
change of ``duration_days``) and is carried by the curriculum and published events.

Lifecycle: draft -> published (needs at least one curriculum item), draft | published ->
archived, archived -> published again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import msgspec

from coursemesh.catalog.domain.outcome import Emit, given
from coursemesh.chassis.errors import Conflict, NotFound, Unprocessable
from coursemesh.contracts.catalog import (
    CourseArchived,
    CourseDetailsChanged,
    CoursePublished,
    CurriculumChanged,
)
from coursemesh.contracts.types import (
    CourseStatus,
    CurriculumDay,
    CurriculumItem,
    PreviewType,
    ReleaseMode,
)

UNSET = msgspec.UNSET
Unset = msgspec.UnsetType

DELIVERY_MODE = "course"
PROGRAM_TYPE = "remote"


@dataclass(frozen=True, slots=True)
class Course:
    """A course: its program (details) and its config (lifecycle, duration, counters)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str | None
    image_url: str | None
    status: CourseStatus
    duration_days: int
    preview_type: PreviewType
    published_at: datetime | None
    archived_at: datetime | None
    curriculum_version: int
    version: int
    created_at: datetime
    updated_at: datetime
    """When the details (name, description, image) last changed."""
    release_mode: ReleaseMode = "open"
    """``daily``: a buyer's day n opens on their day n (learning enforces it)."""
    max_pauses: int | None = None  # per run of a buyer; None: unlimited
    max_pause_days: int | None = None  # per run of a buyer; None: unlimited


@dataclass(frozen=True, slots=True)
class SetDay:
    """A day that was set: a rest day, or a day with workouts."""

    day_offset: int
    is_rest: bool


@dataclass(frozen=True, slots=True)
class SetItem:
    """One workout occurrence on one day."""

    item_id: uuid.UUID
    day_offset: int
    workout_id: uuid.UUID
    position: int


@dataclass(frozen=True, slots=True)
class Curriculum:
    """The days that were set and their items (any order)."""

    days: tuple[SetDay, ...] = ()
    items: tuple[SetItem, ...] = ()

    @property
    def highest_set_day(self) -> int | None:
        return max((d.day_offset for d in self.days), default=None)

    def with_day(self, day_offset: int, day: SetDay | None, items: Sequence[SetItem]) -> Curriculum:
        """This curriculum with one day replaced (``day=None``: the day is cleared)."""
        return Curriculum(
            days=(*(d for d in self.days if d.day_offset != day_offset), *([day] if day else [])),
            items=(*(i for i in self.items if i.day_offset != day_offset), *items),
        )


@dataclass(frozen=True, slots=True)
class CourseEdit:
    """The fields a PATCH sent; ``UNSET`` leaves a field as it is (``None`` clears)."""

    name: str | Unset = UNSET
    description: str | Unset | None = UNSET
    image_url: str | Unset | None = UNSET
    duration_days: int | Unset = UNSET
    preview_type: PreviewType | Unset = UNSET
    release_mode: ReleaseMode | Unset = UNSET
    max_pauses: int | Unset | None = UNSET
    max_pause_days: int | Unset | None = UNSET


@dataclass(frozen=True, slots=True)
class CourseOutcome:
    course: Course
    events: tuple[Emit, ...]


@dataclass(frozen=True, slots=True)
class DayOutcome:
    """A set-day: the day to store in place of the old one (``None``: none; the day is clear),
    its items, and the course after the curriculum change."""

    course: Course
    day: SetDay | None
    items: tuple[SetItem, ...]
    events: tuple[Emit, ...]


def course_not_found() -> NotFound:
    return NotFound("Course not found", code="COURSE_NOT_FOUND")


def found(course: Course | None) -> Course:
    """The course of this organization, or 404: another organization's course id looks like a
    random one."""
    if course is None:
        raise course_not_found()
    return course


def check_publishable(status: CourseStatus, item_count: int) -> None:
    if status == "published":
        raise Conflict("The course is already published", code="COURSE_ALREADY_PUBLISHED")
    if status not in ("draft", "archived"):
        raise Conflict(f"A {status} course cannot be published", code="INVALID_COURSE_STATUS")
    if item_count < 1:
        raise Conflict(
            "A course needs at least one workout in its curriculum to be published",
            code="CURRICULUM_EMPTY",
        )


def check_archivable(status: CourseStatus) -> None:
    if status == "archived":
        raise Conflict("The course is already archived", code="COURSE_ALREADY_ARCHIVED")
    if status not in ("draft", "published"):
        raise Conflict(f"A {status} course cannot be archived", code="INVALID_COURSE_STATUS")


def check_day(
    *, day_offset: int, duration_days: int, is_rest: bool, workout_ids: Sequence[uuid.UUID]
) -> None:
    """A set-day command fits the course: inside the duration; a rest day holds no workouts."""
    if day_offset >= duration_days:
        raise Unprocessable(
            f"dayOffset must be less than durationDays ({duration_days})",
            code="DAY_OFFSET_OUT_OF_RANGE",
            extra={"errors": [{"path": "$.dayOffset", "message": "out of range"}]},
        )
    if is_rest and workout_ids:
        raise Unprocessable(
            "A rest day cannot have workouts",
            code="REST_DAY_WITH_WORKOUTS",
            extra={"errors": [{"path": "$.workoutIds", "message": "must be empty on a rest day"}]},
        )


def check_workouts_known(workout_ids: Sequence[uuid.UUID], known: Collection[uuid.UUID]) -> None:
    """Every workout of a day is a live workout of the organization; each other id (foreign,
    deleted or random, all alike) is refused at its own path."""
    unknown = [i for i, w in enumerate(workout_ids) if w not in known]
    if unknown:
        raise Unprocessable(
            "Some workouts are not in the organization's library",
            code="UNKNOWN_WORKOUT",
            extra={
                "errors": [
                    {"path": f"$.workoutIds[{i}]", "message": "unknown workout"} for i in unknown
                ]
            },
        )


def check_duration(new_duration: int, highest_set_day: int | None) -> None:
    """Shrinking the course must not cut off a day that was already set."""
    if highest_set_day is not None and new_duration <= highest_set_day:
        raise Conflict(
            f"durationDays cannot be less than {highest_set_day + 1}: day {highest_set_day} "
            "is part of the curriculum",
            code="DURATION_BELOW_CURRICULUM",
            extra={"errors": [{"path": "$.durationDays", "message": "below an existing day"}]},
        )


def dense_curriculum(
    duration_days: int, days: Iterable[SetDay], items: Iterable[SetItem]
) -> list[CurriculumDay]:
    """Every day 0 .. duration_days - 1 in order; an unset day is not rest and has no items."""
    rest = {d.day_offset: d.is_rest for d in days}
    by_day: dict[int, list[CurriculumItem]] = {}
    for item in sorted(items, key=lambda i: (i.day_offset, i.position)):
        by_day.setdefault(item.day_offset, []).append(
            CurriculumItem(item_id=item.item_id, workout_id=item.workout_id, position=item.position)
        )
    return [
        CurriculumDay(day_offset=d, is_rest=rest.get(d, False), items=by_day.get(d, []))
        for d in range(duration_days)
    ]


def _details_changed(course: Course) -> Emit:
    return Emit(
        CourseDetailsChanged(
            course_id=course.id,
            organization_id=course.organization_id,
            name=course.name,
            description=course.description,
            image_url=course.image_url,
            duration_days=course.duration_days,
            preview_type=course.preview_type,
            status=course.status,
            release_mode=course.release_mode,
            max_pauses=course.max_pauses,
            max_pause_days=course.max_pause_days,
        ),
        aggregate_id=course.id,
        aggregate_version=course.version,
    )


def _curriculum_changed(course: Course, curriculum: Curriculum) -> tuple[Course, Emit]:
    """The course after one more curriculum change, and the event announcing it."""
    course = replace(
        course, curriculum_version=course.curriculum_version + 1, version=course.version + 1
    )
    return course, Emit(
        CurriculumChanged(
            course_id=course.id,
            organization_id=course.organization_id,
            curriculum_version=course.curriculum_version,
            duration_days=course.duration_days,
            days=dense_curriculum(course.duration_days, curriculum.days, curriculum.items),
        ),
        aggregate_id=course.id,
        aggregate_version=course.version,
    )


def create_course(
    *,
    course_id: uuid.UUID,
    organization_id: uuid.UUID,
    name: str,
    description: str | None,
    image_url: str | None,
    duration_days: int,
    preview_type: PreviewType,
    now: datetime,
) -> CourseOutcome:
    """A draft with an empty curriculum (``curriculum_version`` 0: the empty curriculum needs no
    event); the details event is version 1."""
    course = Course(
        id=course_id,
        organization_id=organization_id,
        name=name,
        description=description,
        image_url=image_url,
        status="draft",
        duration_days=duration_days,
        preview_type=preview_type,
        published_at=None,
        archived_at=None,
        curriculum_version=0,
        version=1,
        created_at=now,
        updated_at=now,
    )
    return CourseOutcome(course, (_details_changed(course),))


def edit_course(
    course: Course, edit: CourseEdit, curriculum: Curriculum, now: datetime
) -> CourseOutcome:
    """Apply the fields sent (details event); a changed ``duration_days`` also changes the dense
    curriculum (curriculum event after the details event) and may not cut off a set day."""
    duration_days = given(edit.duration_days, course.duration_days)
    duration_changed = duration_days != course.duration_days
    if duration_changed:
        check_duration(duration_days, curriculum.highest_set_day)
    details_sent = not all(
        isinstance(value, Unset) for value in (edit.name, edit.description, edit.image_url)
    )
    edited = replace(
        course,
        name=given(edit.name, course.name),
        description=given(edit.description, course.description),
        image_url=given(edit.image_url, course.image_url),
        duration_days=duration_days,
        preview_type=given(edit.preview_type, course.preview_type),
        release_mode=given(edit.release_mode, course.release_mode),
        max_pauses=given(edit.max_pauses, course.max_pauses),
        max_pause_days=given(edit.max_pause_days, course.max_pause_days),
        version=course.version + 1,
        # The program's updated_at follows its own fields (name, description, image).
        updated_at=now if details_sent else course.updated_at,
    )
    events = [_details_changed(edited)]
    if duration_changed:
        edited, curriculum_event = _curriculum_changed(edited, curriculum)
        events.append(curriculum_event)
    return CourseOutcome(edited, tuple(events))


def set_day(
    course: Course,
    curriculum: Curriculum,
    *,
    day_offset: int,
    workout_ids: Sequence[uuid.UUID],
    is_rest: bool,
    known_workouts: Collection[uuid.UUID],
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> DayOutcome:
    """Replace one day entirely, keeping the order of ``workout_ids``: each occurrence is an item
    of its own (positions 0..n-1, a new item id each). No workouts and not rest clears the day.
    Every accepted set-day is a curriculum change, even one that sets what was there."""
    check_day(
        day_offset=day_offset,
        duration_days=course.duration_days,
        is_rest=is_rest,
        workout_ids=workout_ids,
    )
    check_workouts_known(workout_ids, known_workouts)
    day = SetDay(day_offset=day_offset, is_rest=is_rest) if is_rest or workout_ids else None
    items = tuple(
        SetItem(item_id=new_id(), day_offset=day_offset, workout_id=workout_id, position=position)
        for position, workout_id in enumerate(workout_ids)
    )
    changed, event = _curriculum_changed(course, curriculum.with_day(day_offset, day, items))
    return DayOutcome(changed, day, items, (event,))


def publish_course(course: Course, curriculum: Curriculum, now: datetime) -> CourseOutcome:
    """From draft or archived, with at least one workout item (rest days do not count)."""
    check_publishable(course.status, len(curriculum.items))
    published = replace(
        course, status="published", published_at=now, archived_at=None, version=course.version + 1
    )
    event = CoursePublished(
        course_id=course.id,
        organization_id=course.organization_id,
        published_at=now,
        curriculum_version=published.curriculum_version,
    )
    return CourseOutcome(published, (Emit(event, course.id, published.version),))


def archive_course(course: Course, now: datetime) -> CourseOutcome:
    """From draft or published; the storefront stops showing it, buyers keep access."""
    check_archivable(course.status)
    archived = replace(course, status="archived", archived_at=now, version=course.version + 1)
    event = CourseArchived(
        course_id=course.id, organization_id=course.organization_id, archived_at=now
    )
    return CourseOutcome(archived, (Emit(event, course.id, archived.version),))
