"""The player's cache of decoded curricula (unit: no I/O)."""

from __future__ import annotations

import uuid

import msgspec

from coursemesh.learning.adapters.reader import CurriculumCache
from coursemesh.learning.domain.player import Day, Item


def _text(workouts: int) -> str:
    day = Day(
        day_offset=0,
        is_rest=False,
        items=[
            Item(item_id=uuid.uuid4(), workout_id=uuid.uuid4(), position=i) for i in range(workouts)
        ],
    )
    return msgspec.json.encode([day]).decode()


def test_a_version_is_decoded_once_and_served_until_the_version_changes() -> None:
    cache = CurriculumCache()
    course = uuid.uuid4()
    assert cache.get(course) is None  # unknown: the query sends the days
    first = cache.decode(course, 3, _text(2))
    assert cache.get(course) == (3, first)  # same version next time: the query sends none
    second = cache.decode(course, 4, _text(5))
    assert len(second[0].items) == 5
    assert cache.get(course) == (4, second)


def test_an_entry_held_by_a_request_survives_its_eviction() -> None:
    cache = CurriculumCache(max_courses=1)
    course = uuid.uuid4()
    cache.decode(course, 3, _text(1))
    held = cache.get(course)
    cache.decode(uuid.uuid4(), 1, _text(1))  # another request evicts it meanwhile
    assert cache.get(course) is None
    assert held is not None
    assert len(held[1][0].items) == 1  # still the days this request compared versions with


def test_the_cache_keeps_only_the_most_recently_used_courses() -> None:
    cache = CurriculumCache(max_courses=2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cache.decode(a, 1, _text(1))
    cache.decode(b, 1, _text(1))
    cache.get(a)  # a is now the most recent
    cache.decode(c, 1, _text(1))
    assert [cache.get(x) is not None for x in (a, b, c)] == [True, False, True]
