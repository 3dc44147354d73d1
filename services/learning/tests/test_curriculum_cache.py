"""The player's cache of decoded curricula (unit: no I/O)."""

from __future__ import annotations

import uuid

import msgspec
import pytest

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
    assert cache.version_of(course) == -1  # unknown: the query sends the days
    first = cache.days(course, 3, _text(2))
    assert cache.version_of(course) == 3
    assert cache.days(course, 3, None) is first  # same version: the query sent no days
    second = cache.days(course, 4, _text(5))
    assert len(second[0].items) == 5
    assert cache.version_of(course) == 4


def test_no_days_for_a_version_the_cache_does_not_hold_is_a_miss() -> None:
    cache = CurriculumCache()
    course = uuid.uuid4()
    cache.days(course, 3, _text(1))
    with pytest.raises(LookupError):
        cache.days(course, 4, None)


def test_the_cache_keeps_only_the_most_recently_used_courses() -> None:
    cache = CurriculumCache(max_courses=2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cache.days(a, 1, _text(1))
    cache.days(b, 1, _text(1))
    cache.days(a, 1, None)  # a is now the most recent
    cache.days(c, 1, _text(1))
    assert (cache.version_of(a), cache.version_of(b), cache.version_of(c)) == (1, -1, 1)
