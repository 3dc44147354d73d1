"""Course lifecycle and curriculum rules (pure).

The status machine is the seed's lifecycle table: draft -> published (needs at least one
curriculum item), draft | published -> archived, archived -> published again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from coursemesh.chassis.errors import Conflict, Unprocessable
from coursemesh.contracts.types import CourseStatus, CurriculumDay, CurriculumItem

DELIVERY_MODE = "course"
PROGRAM_TYPE = "remote"


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


def check_duration(new_duration: int, highest_set_day: int | None) -> None:
    """Shrinking the course must not cut off a day that was already set."""
    if highest_set_day is not None and new_duration <= highest_set_day:
        raise Conflict(
            f"durationDays cannot be less than {highest_set_day + 1}: day {highest_set_day} "
            "is part of the curriculum",
            code="DURATION_BELOW_CURRICULUM",
            extra={"errors": [{"path": "$.durationDays", "message": "below an existing day"}]},
        )


@dataclass(frozen=True)
class SetDay:
    day_offset: int
    is_rest: bool


@dataclass(frozen=True)
class SetItem:
    item_id: uuid.UUID
    day_offset: int
    workout_id: uuid.UUID
    position: int


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
