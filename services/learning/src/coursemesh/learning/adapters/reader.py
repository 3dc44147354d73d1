"""The player's read side: everything ``GET /me/courses/:id`` shows, in one statement.

Opening a course is the most frequent request of the suite, so it skips the ORM and the
transaction: one driver round trip (``Database.reading``) instead of a unit of work with five
statements. The statement sends what is per buyer (entitlement, enrollment, completed ids) every
time, and the per-course part (the curriculum and the workouts it shows) only when the process
does not hold it already: the read model (``app/courses.py``) says which copy the process holds,
PostgreSQL says whether that copy is still current.
"""

from __future__ import annotations

import uuid

import msgspec

from coursemesh.chassis.transaction import Driver, Record
from coursemesh.learning.adapters.store import PAUSES
from coursemesh.learning.app.courses import CourseReadModel, CurriculumCopy
from coursemesh.learning.app.ports import LibraryChange
from coursemesh.learning.domain.model import (
    CourseDetails,
    Curriculum,
    Day,
    Enrollment,
    Entitlement,
    PlayerSnapshot,
    Workout,
)
from coursemesh.learning.domain.sync import CustomCourse, CustomFile

# $3..$6 describe the copy the process holds: the version of the curriculum event it was decoded
# from, the distinct workouts its items use, and how many of those workout rows there were and
# the sum of their versions. Every change to a workout row (upsert or tombstone) raises its
# version and rows are never deleted, so the (rows, sum) pair changes with any of them.
SNAPSHOT_SQL = """
SELECT e.entitlement_id, e.organization_id, e.status, e.access_revoked_at,
       c.course_id AS known_course_id, c.organization_id AS course_organization_id, c.name,
       c.image_url, c.duration_days, c.status AS course_status, c.curriculum_version,
       c.curriculum_event_version, c.release_mode, c.max_pauses, c.max_pause_days,
       -- the days only when the held copy is not of this version
       CASE WHEN c.curriculum_event_version = $3 THEN NULL ELSE c.curriculum::text END
           AS curriculum,
       CASE WHEN c.curriculum_event_version = $3 THEN NULL ELSE k.ids END AS workout_ids,
       w.rows AS workout_rows, w.stamp AS workout_stamp,
       -- the workouts only when the days or any of their workouts changed
       CASE WHEN c.curriculum_event_version = $3 AND w.rows = $5 AND w.stamp = $6 THEN NULL
            ELSE (SELECT coalesce(json_agg(json_build_object(
                             'workout_id', x.workout_id, 'title', x.title,
                             'description', x.description, 'duration_minutes', x.duration_minutes,
                             'instructions', x.instructions, 'media_urls', x.media_urls)),
                         '[]')::text
                    FROM workouts x
                   WHERE x.workout_id = ANY(k.ids)) END AS workouts,
       n.entitlement_id AS enrolled_id, n.start_date, n.completed_at, n.restart_count,
       n.last_activity_at, n.version AS enrollment_version,
       n.unlocked_at, n.unlocked_by, n.unlock_reason,
       d.item_ids AS completed_item_ids, d.workout_ids AS completed_workout_ids,
       d.completed_times,
       z.certificate_id,
       -- pauses are rare: an index probe finding nothing for most buyers
       (SELECT json_agg(json_build_object(
                   'run', p.run, 'paused_on', p.paused_on, 'paused_at', p.paused_at,
                   'paused_by', p.paused_by, 'resumed_on', p.resumed_on,
                   'resumed_at', p.resumed_at, 'resumed_by', p.resumed_by, 'days', p.days)
                   ORDER BY p.id)::text
          FROM enrollment_pauses p WHERE p.entitlement_id = e.entitlement_id) AS pauses
  FROM entitlements e
  LEFT JOIN courses c ON c.course_id = e.course_id
  LEFT JOIN enrollments n ON n.entitlement_id = e.entitlement_id
  -- the workouts the curriculum uses: the held list, else read from the days
  CROSS JOIN LATERAL (
      SELECT CASE WHEN c.curriculum_event_version = $3 THEN $4::uuid[]
                  ELSE ARRAY(SELECT DISTINCT (i ->> 'workout_id')::uuid
                               FROM jsonb_array_elements(c.curriculum) AS day,
                                    jsonb_array_elements(day -> 'items') AS i) END AS ids) k
  CROSS JOIN LATERAL (
      SELECT count(*) AS rows, coalesce(sum(x.version), 0) AS stamp
        FROM workouts x WHERE x.workout_id = ANY(k.ids)) w
  -- one sort for the three arrays, each in item order (the workout ids repeat: deduplicated
  -- by the caller, which sorts them anyway)
  CROSS JOIN LATERAL (
      SELECT array_agg(x.item_id::text) AS item_ids,
             array_agg(x.workout_id::text) AS workout_ids,
             array_agg(x.completed_at) AS completed_times
        FROM (SELECT item_id, workout_id, completed_at FROM completions
               WHERE entitlement_id = e.entitlement_id ORDER BY item_id) x) d
  -- the run's certificate, while the run is completed
  LEFT JOIN certificates z ON z.entitlement_id = e.entitlement_id
        AND z.run = n.restart_count AND n.completed_at IS NOT NULL
 WHERE e.user_id = $1 AND e.course_id = $2
"""

_days = msgspec.json.Decoder(list[Day])
_files = msgspec.json.Decoder(list[CustomFile])
_workouts = msgspec.json.Decoder(list[Workout])


# Matches no curriculum event version: the query sends everything.
_NOTHING_HELD: tuple[int, list[uuid.UUID], int, int] = (-1, [], -1, -1)


class SqlPlayerReader:
    """:class:`~coursemesh.learning.app.ports.PlayerReader` on a driver connection from
    ``Database.reading()``, keeping the course read model current."""

    def __init__(self, conn: Driver, courses: CourseReadModel) -> None:
        self._conn = conn
        self._courses = courses

    async def snapshot(self, user_id: str, course_id: uuid.UUID) -> PlayerSnapshot | None:
        held = self._courses.copy(course_id)
        copy = (
            _NOTHING_HELD
            if held is None
            else (held.event_version, held.workout_ids, held.workout_rows, held.workout_stamp)
        )
        row = await self._conn.fetchrow(SNAPSHOT_SQL, user_id, course_id, *copy)
        if row is None:
            return None
        known = row["known_course_id"] is not None
        item_ids = row["completed_item_ids"]
        workout_ids = row["completed_workout_ids"]
        times = row["completed_times"]
        return PlayerSnapshot(
            entitlement=Entitlement(
                entitlement_id=row["entitlement_id"],
                user_id=user_id,
                course_id=course_id,
                organization_id=row["organization_id"],
                status=row["status"],
                access_revoked_at=row["access_revoked_at"],
            ),
            course=_course(row) if known else None,
            curriculum=self._curriculum(course_id, row, held) if known else None,
            enrollment=None if row["enrolled_id"] is None else _enrollment(row),
            completed_item_ids=[] if item_ids is None else item_ids,
            completed_workout_ids=[] if workout_ids is None else sorted(set(workout_ids)),
            certificate_id=row["certificate_id"],
            pauses=[] if row["pauses"] is None else PAUSES.decode(row["pauses"]),
            completed_times=[] if times is None else times,
        )

    def _curriculum(
        self, course_id: uuid.UUID, row: Record, held: CurriculumCopy | None
    ) -> Curriculum:
        workouts = row["workouts"]
        if workouts is None:  # the held copy is current: the query sent neither part
            assert held is not None
            return held.curriculum
        days = row["curriculum"]
        if days is None:  # same days, but a workout they show changed
            assert held is not None
            entry = msgspec.structs.replace(
                held,
                workout_rows=row["workout_rows"],
                workout_stamp=row["workout_stamp"],
                curriculum=Curriculum(days=held.curriculum.days, workouts=_by_id(workouts)),
            )
        else:
            entry = CurriculumCopy(
                event_version=row["curriculum_event_version"],
                workout_ids=row["workout_ids"],
                workout_rows=row["workout_rows"],
                workout_stamp=row["workout_stamp"],
                curriculum=Curriculum(days=_days.decode(days), workouts=_by_id(workouts)),
            )
        self._courses.keep(course_id, entry)
        return entry.curriculum


def _by_id(text: str) -> dict[uuid.UUID, Workout]:
    return {w.workout_id: w for w in _workouts.decode(text)}


def _course(row: Record) -> CourseDetails:
    return CourseDetails(
        course_id=row["known_course_id"],
        organization_id=row["course_organization_id"],
        name=row["name"],
        image_url=row["image_url"],
        duration_days=row["duration_days"],
        status=row["course_status"],
        curriculum_version=row["curriculum_version"],
        release_mode=row["release_mode"],
        max_pauses=row["max_pauses"],
        max_pause_days=row["max_pause_days"],
    )


def _enrollment(row: Record) -> Enrollment:
    return Enrollment(
        entitlement_id=row["enrolled_id"],
        start_date=row["start_date"],
        completed_at=row["completed_at"],
        restart_count=row["restart_count"],
        last_activity_at=row["last_activity_at"],
        version=row["enrollment_version"],
        unlocked_at=row["unlocked_at"],
        unlocked_by=row["unlocked_by"],
        unlock_reason=row["unlock_reason"],
    )


class SqlSyncReader(SqlPlayerReader):
    """:class:`~coursemesh.learning.app.ports.SyncReader`: the player's read and the buyer's
    library change log, on the same connection."""

    async def counter(self, user_id: str) -> int:
        seq = await self._conn.fetchval("SELECT seq FROM sync_users WHERE user_id = $1", user_id)
        return 0 if seq is None else int(seq)

    async def changes(
        self, user_id: str, *, after: int, upto: int, limit: int
    ) -> list[LibraryChange]:
        rows = await self._conn.fetch(
            "SELECT course_id, seq, removed FROM sync_library"
            " WHERE user_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4",
            user_id,
            after,
            upto,
            limit,
        )
        return [
            LibraryChange(course_id=r["course_id"], seq=r["seq"], removed=r["removed"])
            for r in rows
        ]

    async def held(self, user_id: str) -> list[uuid.UUID]:
        rows = await self._conn.fetch(
            "SELECT course_id FROM entitlements WHERE user_id = $1 AND status = 'active'"
            " AND access_revoked_at IS NULL ORDER BY course_id",
            user_id,
        )
        return [r["course_id"] for r in rows]

    async def custom_courses(
        self, user_id: str, course_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, CustomCourse]:
        if not course_ids:
            return {}
        rows = await self._conn.fetch(
            "SELECT custom_course_id, checksum, file_size_bytes, document, files::text AS files"
            " FROM custom_courses WHERE user_id = $1 AND custom_course_id = ANY($2::uuid[])",
            user_id,
            course_ids,
        )
        return {
            r["custom_course_id"]: CustomCourse(
                course_id=r["custom_course_id"],
                checksum=r["checksum"],
                size_bytes=r["file_size_bytes"],
                document=r["document"],
                files=_files.decode(r["files"]),
            )
            for r in rows
        }

    async def custom_checksums(self, user_id: str) -> dict[uuid.UUID, str]:
        rows = await self._conn.fetch(
            "SELECT custom_course_id, checksum FROM custom_courses WHERE user_id = $1", user_id
        )
        return {r["custom_course_id"]: r["checksum"] for r in rows}
