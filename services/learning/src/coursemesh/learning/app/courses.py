"""The player's read model of courses: what the process keeps of each course between requests.

Per course (the most recently used ones), the curriculum copy last read, with what tells the
reader whether that copy is still current, and what was rendered from that copy for the
answer. Rendering belongs to the copy it was made from: a new copy (the curriculum or one of
its workouts changed) is rendered anew, and an evicted course takes both with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar, cast

import msgspec
from cachetools import LRUCache

from coursemesh.learning.domain.model import Curriculum

R = TypeVar("R")


class CurriculumCopy(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A course's curriculum as the process holds it, with what says whether it is current.

    A curriculum event version never changes, and the workouts' (rows, sum of versions) pair
    changes with any of those workouts, so a copy is current for as long as the reader's query
    finds both the same; the query then sends neither the days nor the workouts.
    """

    event_version: int  # of the curriculum event the days came from
    workout_ids: list[uuid.UUID]  # distinct workouts of the days
    workout_rows: int
    workout_stamp: int  # sum of those workout rows' versions
    curriculum: Curriculum


class _Entry:
    __slots__ = ("copy", "length", "rendered", "rendered_from")

    def __init__(self, copy: CurriculumCopy | None) -> None:
        self.copy = copy
        self.rendered_from: Curriculum | None = None
        self.length = -1
        self.rendered: Any = None


class CourseReadModel:
    """Courses by id, the most recently used ``max_courses`` of them."""

    def __init__(self, max_courses: int = 1_000) -> None:
        self._entries: LRUCache[uuid.UUID, _Entry] = LRUCache(maxsize=max_courses)

    def copy(self, course_id: uuid.UUID) -> CurriculumCopy | None:
        """The copy held for the course; the caller keeps it for its request, so an eviction
        meanwhile cannot take it from under it."""
        entry = self._entries.get(course_id)
        return None if entry is None else entry.copy

    def keep(self, course_id: uuid.UUID, copy: CurriculumCopy) -> None:
        """Hold ``copy`` from now on; what was rendered from the previous one is dropped."""
        self._entries[course_id] = _Entry(copy)

    def rendered(
        self,
        course_id: uuid.UUID,
        curriculum: Curriculum,
        length: int,
        render: Callable[[Curriculum, int], R],
    ) -> R:
        """``render(curriculum, length)``, made once per copy (that very instance) and
        length. One ``render`` per read model: what it makes is kept untyped."""
        entry = self._entries.get(course_id)
        if entry is not None and entry.rendered_from is curriculum and entry.length == length:
            return cast(R, entry.rendered)
        rendered = render(curriculum, length)
        if entry is None:  # a course without a copy: its content has not arrived yet
            entry = self._entries[course_id] = _Entry(None)
        entry.rendered_from = curriculum
        entry.length = length
        entry.rendered = rendered
        return rendered
