"""The player's read model of courses (unit: no I/O)."""

from __future__ import annotations

import uuid

from coursemesh.learning.app.courses import CourseReadModel, CurriculumCopy
from coursemesh.learning.domain.model import EMPTY_CURRICULUM, Curriculum, Day, Item


def _copy(version: int, workouts: int) -> CurriculumCopy:
    day = Day(
        day_offset=0,
        is_rest=False,
        items=[
            Item(item_id=uuid.uuid4(), workout_id=uuid.uuid4(), position=i) for i in range(workouts)
        ],
    )
    return CurriculumCopy(
        event_version=version,
        workout_ids=[i.workout_id for i in day.items],
        workout_rows=workouts,
        workout_stamp=workouts,
        curriculum=Curriculum(days=[day], workouts={}),
    )


def _render(curriculum: Curriculum, length: int) -> tuple[Curriculum, int]:
    return (curriculum, length)


def test_the_held_copy_is_replaced_by_a_newer_one() -> None:
    courses = CourseReadModel()
    course = uuid.uuid4()
    assert courses.copy(course) is None  # unknown: the query sends everything
    first = _copy(3, 2)
    courses.keep(course, first)
    assert courses.copy(course) is first  # the query is told version 3 and the workouts' stamp
    second = _copy(4, 5)
    courses.keep(course, second)
    assert courses.copy(course) is second


def test_an_entry_held_by_a_request_survives_its_eviction() -> None:
    courses = CourseReadModel(max_courses=1)
    course = uuid.uuid4()
    courses.keep(course, _copy(3, 1))
    held = courses.copy(course)
    courses.keep(uuid.uuid4(), _copy(1, 1))  # another request evicts it meanwhile
    assert courses.copy(course) is None
    assert held is not None
    assert len(held.curriculum.days[0].items) == 1  # still the copy this request compared


def test_the_model_keeps_only_the_most_recently_used_courses() -> None:
    courses = CourseReadModel(max_courses=2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    courses.keep(a, _copy(1, 1))
    courses.keep(b, _copy(1, 1))
    courses.copy(a)  # a is now the most recent
    courses.keep(c, _copy(1, 1))
    assert [courses.copy(x) is not None for x in (a, b, c)] == [True, False, True]


def test_a_new_copy_drops_what_was_rendered_from_the_old_one() -> None:
    courses = CourseReadModel()
    course = uuid.uuid4()
    old = _copy(1, 1)
    courses.keep(course, old)
    rendered = courses.rendered(course, old.curriculum, 1, _render)
    assert courses.rendered(course, old.curriculum, 1, _render) is rendered
    new = _copy(2, 1)
    courses.keep(course, new)
    assert courses.copy(course) is new
    assert courses.rendered(course, new.curriculum, 1, _render) == (new.curriculum, 1)
    # A request still holding the old copy gets its rendering, and the new one stays held.
    assert courses.rendered(course, old.curriculum, 1, _render)[0] is old.curriculum
    assert courses.copy(course) is new


def test_a_course_without_content_is_rendered_once_too() -> None:
    courses = CourseReadModel()
    course = uuid.uuid4()
    empty = courses.rendered(course, EMPTY_CURRICULUM, 3, _render)
    assert courses.rendered(course, EMPTY_CURRICULUM, 3, _render) is empty
    assert courses.copy(course) is None  # nothing was read: the query still sends everything
