"""The player's read side: everything ``GET /me/courses/:id`` shows, in one statement.

Opening a course is the most frequent request of the suite, so it skips the ORM and the
transaction: one driver round trip (``Database.reading``) instead of a unit of work with five
statements. PostgreSQL aggregates the completions and the workouts as JSON, which msgspec
decodes straight into the port's structs.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import Any

import msgspec

from coursemesh.learning.app.ports import (
    Completion,
    Course,
    Enrollment,
    Entitlement,
    PlayerSnapshot,
    Workout,
)
from coursemesh.learning.domain.player import Day

SNAPSHOT_SQL = """
SELECT e.entitlement_id, e.user_id, e.course_id, e.organization_id, e.status,
       e.access_revoked_at,
       c.course_id AS known_course_id, c.organization_id AS course_organization_id, c.name,
       c.image_url, c.duration_days, c.status AS course_status, c.curriculum_version,
       c.curriculum_event_version,
       -- the days only when the caller's cached copy is not of this version
       CASE WHEN c.curriculum_event_version = $3 THEN NULL ELSE c.curriculum::text END
           AS curriculum,
       n.entitlement_id AS enrolled_id, n.start_date, n.completed_at, n.restart_count,
       n.last_activity_at, n.version AS enrollment_version,
       (SELECT coalesce(json_agg(json_build_object(
                   'item_id', x.item_id, 'workout_id', x.workout_id, 'day_offset', x.day_offset,
                   'curriculum_version', x.curriculum_version, 'completed_at', x.completed_at)),
               '[]')::text
          FROM completions x
         WHERE x.entitlement_id = e.entitlement_id) AS completions,
       (SELECT coalesce(json_agg(json_build_object(
                   'workout_id', w.workout_id, 'title', w.title, 'description', w.description,
                   'duration_minutes', w.duration_minutes, 'instructions', w.instructions,
                   'media_urls', w.media_urls)),
               '[]')::text
          FROM workouts w
         WHERE w.workout_id IN (SELECT (i ->> 'workout_id')::uuid
                                  FROM jsonb_array_elements(c.curriculum) AS d,
                                       jsonb_array_elements(d -> 'items') AS i)) AS workouts
  FROM entitlements e
  LEFT JOIN courses c ON c.course_id = e.course_id
  LEFT JOIN enrollments n ON n.entitlement_id = e.entitlement_id
 WHERE e.user_id = $1 AND e.course_id = $2
"""

_days = msgspec.json.Decoder(list[Day])
_completions = msgspec.json.Decoder(list[Completion])
_workouts = msgspec.json.Decoder(list[Workout])


class CurriculumCache:
    """Decoded curricula by course, each with the version of the event that set it.

    A curriculum of a given version never changes, so an entry is valid for as long as the
    projection holds that version; the snapshot query compares versions and sends the days only
    when they differ. Decoding a 90-day curriculum per request was the player's largest cost.
    """

    def __init__(self, max_courses: int = 1_000) -> None:
        self._max = max_courses
        self._entries: OrderedDict[uuid.UUID, tuple[int, list[Day]]] = OrderedDict()

    def get(self, course_id: uuid.UUID) -> tuple[int, list[Day]] | None:
        """(version, days) held for the course; the caller keeps the entry for its request,
        so an eviction meanwhile cannot take the days from under it."""
        entry = self._entries.get(course_id)
        if entry is not None:
            self._entries.move_to_end(course_id)
        return entry

    def decode(self, course_id: uuid.UUID, version: int, text: str) -> list[Day]:
        """Decode a curriculum the query sent and hold it as the course's current one."""
        days = _days.decode(text)
        self._entries[course_id] = (version, days)
        self._entries.move_to_end(course_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return days


class SqlPlayerReader:
    """:class:`PlayerReader` on a driver connection from ``Database.reading()``."""

    def __init__(self, conn: Any, curricula: CurriculumCache) -> None:
        self._conn = conn
        self._curricula = curricula

    async def snapshot(self, user_id: str, course_id: uuid.UUID) -> PlayerSnapshot | None:
        held = self._curricula.get(course_id)
        row = await self._conn.fetchrow(
            SNAPSHOT_SQL, user_id, course_id, -1 if held is None else held[0]
        )
        if row is None:
            return None
        course = None if row["known_course_id"] is None else self._course(row, held)
        return PlayerSnapshot(
            entitlement=Entitlement(
                entitlement_id=row["entitlement_id"],
                user_id=row["user_id"],
                course_id=row["course_id"],
                organization_id=row["organization_id"],
                status=row["status"],
                access_revoked_at=row["access_revoked_at"],
            ),
            course=course,
            enrollment=None if row["enrolled_id"] is None else _enrollment(row),
            completions=_completions.decode(row["completions"]),
            workouts={w.workout_id: w for w in _workouts.decode(row["workouts"])},
        )

    def _course(self, row: Any, held: tuple[int, list[Day]] | None) -> Course:
        course_id = row["known_course_id"]
        text = row["curriculum"]
        if text is None:  # the query saw the version we hold: it sent no days
            assert held is not None
            days = held[1]
        else:
            days = self._curricula.decode(course_id, row["curriculum_event_version"], text)
        return Course(
            course_id=course_id,
            organization_id=row["course_organization_id"],
            name=row["name"],
            image_url=row["image_url"],
            duration_days=row["duration_days"],
            status=row["course_status"],
            curriculum_version=row["curriculum_version"],
            days=days,
        )


def _enrollment(row: Any) -> Enrollment:
    return Enrollment(
        entitlement_id=row["enrolled_id"],
        start_date=row["start_date"],
        completed_at=row["completed_at"],
        restart_count=row["restart_count"],
        last_activity_at=row["last_activity_at"],
        version=row["enrollment_version"],
    )
