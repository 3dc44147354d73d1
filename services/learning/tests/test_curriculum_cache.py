"""The player's cache of curricula (unit: no I/O)."""

from __future__ import annotations

import uuid

from coursemesh.learning.adapters.reader import CurriculumCache, HeldCurriculum
from coursemesh.learning.app.ports import Curriculum
from coursemesh.learning.domain.player import Day, Item


def _held(version: int, workouts: int) -> HeldCurriculum:
    day = Day(
        day_offset=0,
        is_rest=False,
        items=[
            Item(item_id=uuid.uuid4(), workout_id=uuid.uuid4(), position=i) for i in range(workouts)
        ],
    )
    return HeldCurriculum(
        event_version=version,
        workout_ids=[i.workout_id for i in day.items],
        workout_rows=workouts,
        workout_stamp=workouts,
        curriculum=Curriculum(days=[day], workouts={}),
    )


def test_the_held_copy_is_replaced_by_a_newer_one() -> None:
    cache = CurriculumCache()
    course = uuid.uuid4()
    assert cache.get(course) is None  # unknown: the query sends everything
    first = _held(3, 2)
    cache.put(course, first)
    assert cache.get(course) is first  # the query is told version 3 and the workouts' stamp
    second = _held(4, 5)
    cache.put(course, second)
    assert cache.get(course) is second


def test_an_entry_held_by_a_request_survives_its_eviction() -> None:
    cache = CurriculumCache(max_courses=1)
    course = uuid.uuid4()
    cache.put(course, _held(3, 1))
    held = cache.get(course)
    cache.put(uuid.uuid4(), _held(1, 1))  # another request evicts it meanwhile
    assert cache.get(course) is None
    assert held is not None
    assert len(held.curriculum.days[0].items) == 1  # still the copy this request compared


def test_the_cache_keeps_only_the_most_recently_used_courses() -> None:
    cache = CurriculumCache(max_courses=2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cache.put(a, _held(1, 1))
    cache.put(b, _held(1, 1))
    cache.get(a)  # a is now the most recent
    cache.put(c, _held(1, 1))
    assert [cache.get(x) is not None for x in (a, b, c)] == [True, False, True]
