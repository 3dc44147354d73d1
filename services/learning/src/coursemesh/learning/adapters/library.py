"""The buyers' library change log: what raises a buyer's counter and stamps a course with it.

Called inside the transaction that makes the change (a player write, a projection), so the
stamp commits with it. A buyer's counter row is locked while the transaction lasts; several
buyers' rows are locked in ``user_id`` order, so two fan-outs cannot deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from coursemesh.chassis.transaction import Driver

_ENSURE_USERS = """
INSERT INTO sync_users (user_id, seq)
SELECT u, 0 FROM unnest($1::text[]) AS u ORDER BY u
ON CONFLICT (user_id) DO NOTHING
"""

_LOCK_USERS = """
SELECT user_id FROM sync_users WHERE user_id = ANY($1::text[]) ORDER BY user_id FOR UPDATE
"""

# One number per (buyer, course): a page boundary never splits a number between two courses.
_STAMP = """
WITH wanted AS (
    SELECT w.user_id, w.course_id, w.removed,
           row_number() OVER (PARTITION BY w.user_id ORDER BY w.course_id) AS n
      FROM unnest($1::text[], $2::uuid[], $3::bool[]) AS w(user_id, course_id, removed)),
counts AS (SELECT user_id, count(*) AS k FROM wanted GROUP BY user_id),
bumped AS (
    UPDATE sync_users s SET seq = s.seq + c.k FROM counts c WHERE s.user_id = c.user_id
    RETURNING s.user_id, s.seq - c.k AS base)
INSERT INTO sync_library (user_id, course_id, seq, removed)
SELECT w.user_id, w.course_id, b.base + w.n, w.removed
  FROM wanted w JOIN bumped b ON b.user_id = w.user_id
ON CONFLICT (user_id, course_id) DO UPDATE SET seq = excluded.seq, removed = excluded.removed
"""


# A player write stamps one course of one buyer: one round trip.
_STAMP_ONE = """
WITH bumped AS (
    INSERT INTO sync_users (user_id, seq) VALUES ($1, 1)
    ON CONFLICT (user_id) DO UPDATE SET seq = sync_users.seq + 1
    RETURNING seq)
INSERT INTO sync_library (user_id, course_id, seq, removed)
SELECT $1, $2, seq, $3 FROM bumped
ON CONFLICT (user_id, course_id) DO UPDATE SET seq = excluded.seq, removed = excluded.removed
"""


async def stamp(driver: Driver, changes: Iterable[tuple[str, uuid.UUID, bool]]) -> None:
    """Raise each buyer's counter and stamp each (buyer, course, removed) with a number of its
    own."""
    wanted = {(user, course): removed for user, course, removed in changes}
    if not wanted:
        return
    if len(wanted) == 1:
        [((user, course), removed)] = wanted.items()
        await driver.execute(_STAMP_ONE, user, course, removed)
        return
    users = sorted({user for user, _ in wanted})
    await driver.execute(_ENSURE_USERS, users)
    await driver.fetch(_LOCK_USERS, users)
    keys = sorted(wanted)
    await driver.execute(
        _STAMP,
        [user for user, _ in keys],
        [course for _, course in keys],
        [wanted[key] for key in keys],
    )


# The buyers holding a course now: a change of its content reaches every one of them.
_HOLDERS = """
SELECT user_id, course_id FROM entitlements
 WHERE course_id = ANY($1::uuid[]) AND status = 'active' AND access_revoked_at IS NULL
"""


async def stamp_courses(driver: Driver, course_ids: Iterable[uuid.UUID]) -> None:
    rows = await driver.fetch(_HOLDERS, list(set(course_ids)))
    await stamp(driver, ((r["user_id"], r["course_id"], False) for r in rows))


# Courses whose curriculum shows the workout (the days are JSON: one containment test).
_COURSES_WITH_WORKOUT = """
SELECT course_id FROM courses
 WHERE curriculum @> jsonb_build_array(jsonb_build_object(
           'items', jsonb_build_array(jsonb_build_object('workout_id', $1::text))))
"""


async def stamp_workout(driver: Driver, workout_id: uuid.UUID) -> None:
    rows = await driver.fetch(_COURSES_WITH_WORKOUT, str(workout_id))
    await stamp_courses(driver, [r["course_id"] for r in rows])


# An entitlement that opens the player stamps its course held; one that no longer does stamps
# it removed, when the buyer's devices may hold it (a pending one never synced is left out).
_ENTITLEMENTS = """
SELECT e.user_id, e.course_id,
       NOT (e.status = 'active' AND e.access_revoked_at IS NULL) AS removed
  FROM entitlements e
 WHERE e.entitlement_id = ANY($1::uuid[])
   AND ((e.status = 'active' AND e.access_revoked_at IS NULL)
        OR EXISTS (SELECT 1 FROM sync_library l
                    WHERE l.user_id = e.user_id AND l.course_id = e.course_id))
"""


async def stamp_entitlements(driver: Driver, entitlement_ids: list[uuid.UUID]) -> None:
    rows = await driver.fetch(_ENTITLEMENTS, entitlement_ids)
    await stamp(driver, ((r["user_id"], r["course_id"], r["removed"]) for r in rows))
