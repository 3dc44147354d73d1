"""The storefront's read: one course as a buyer sees it, in one statement on a pooled driver
connection (no ORM session, no SQL compilation, no transaction)."""

from __future__ import annotations

import uuid

from coursemesh.catalog.app.ports import StorefrontListing
from coursemesh.chassis.db import Database

# Course, config, seller and plan joined on primary keys; the workout count and the preview are
# correlated subqueries over the (program_id, day_offset, position) index: one round trip, no
# N+1. The preview is built as camelCase JSON in PostgreSQL, ready to decode into its Struct.
#   none       -> no workouts
#   first_day  -> the workouts of the earliest day that has any, with description and duration
#   all_titles -> every item of the curriculum in order, title and duration only
# Every table it reads carries the storefront_changed trigger (migration catalog_0003).
STOREFRONT_SQL = """
    SELECT p.id, p.name, p.description, p.image_url,
           c.status, c.duration_days, c.preview_type,
           o.name AS seller_name, o.slug AS seller_slug, o.logo_url AS seller_logo_url,
           pl.price_in_cents, pl.currency, pl.is_active,
           (SELECT count(*) FROM course_items ci WHERE ci.program_id = p.id) AS workout_count,
           (SELECT coalesce(json_agg(json_build_object(
                       'dayOffset', ci.day_offset,
                       'position', ci.position,
                       'title', w.title,
                       'durationMinutes', w.duration_minutes,
                       'description', CASE WHEN c.preview_type = 'first_day'
                                           THEN w.description END)
                     ORDER BY ci.day_offset, ci.position), '[]')
              FROM course_items ci JOIN workouts w ON w.id = ci.workout_id
             WHERE ci.program_id = p.id
               AND (c.preview_type = 'all_titles'
                    OR (c.preview_type = 'first_day'
                        AND ci.day_offset = (SELECT min(f.day_offset) FROM course_items f
                                              WHERE f.program_id = p.id)))
           )::text AS preview
      FROM programs p
      JOIN course_configs c ON c.program_id = p.id
      JOIN organizations o ON o.id = p.organization_id
      LEFT JOIN plan_projection pl ON pl.course_id = p.id
     WHERE p.id = $1
    """


class SqlStorefrontStore:
    """:class:`~coursemesh.catalog.app.ports.StorefrontStore` on the service's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def listing(self, course_id: uuid.UUID) -> StorefrontListing | None:
        async with self._db.reading() as conn:
            row = await conn.fetchrow(STOREFRONT_SQL, course_id)
        if row is None:
            return None
        return StorefrontListing(
            id=row["id"],
            name=row["name"],
            description=row["description"],
            image_url=row["image_url"],
            status=row["status"],
            duration_days=row["duration_days"],
            preview_type=row["preview_type"],
            seller_name=row["seller_name"],
            seller_slug=row["seller_slug"],
            seller_logo_url=row["seller_logo_url"],
            price_in_cents=row["price_in_cents"],
            currency=row["currency"],
            plan_active=row["is_active"],
            workout_count=row["workout_count"],
            preview=row["preview"],
        )
