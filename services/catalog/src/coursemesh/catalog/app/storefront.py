"""The public storefront: one course as a buyer sees it, read in a single query.

The seed's branches, in order: missing -> 404; not published -> 404 "Course not available";
no active plan -> 404 "Course is not available for purchase"; otherwise the course.
"""

from __future__ import annotations

import uuid

import msgspec
import sqlalchemy as sa

from coursemesh.catalog.app.views import (
    PreviewWorkoutView,
    PriceView,
    SellerView,
    StorefrontCourseView,
)
from coursemesh.chassis.db import Database
from coursemesh.chassis.errors import NotFound

# Course, config, seller and plan joined on primary keys; the workout count and the preview are
# correlated subqueries over the (program_id, day_offset, position) index: one round trip, no
# N+1. The preview is built as camelCase JSON in PostgreSQL and decoded straight into its Struct.
#   none       -> no workouts
#   first_day  -> the workouts of the earliest day that has any, with description and duration
#   all_titles -> every item of the curriculum in order, title and duration only
STOREFRONT_SQL = sa.text(
    """
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
     WHERE p.id = :course_id
    """
)

_preview_decoder = msgspec.json.Decoder(list[PreviewWorkoutView])


async def storefront_course(db: Database, course_id: uuid.UUID) -> StorefrontCourseView:
    async with db.engine.connect() as conn:
        row = (await conn.execute(STOREFRONT_SQL, {"course_id": course_id})).one_or_none()
    if row is None:
        raise NotFound("Course not found", code="NOT_FOUND")
    if row.status != "published":
        raise NotFound("Course not available", code="COURSE_NOT_AVAILABLE")
    if not row.is_active:  # no plan projected yet, or the plan is inactive
        raise NotFound("Course is not available for purchase", code="COURSE_NOT_PURCHASABLE")
    return StorefrontCourseView(
        id=row.id,
        name=row.name,
        description=row.description,
        image_url=row.image_url,
        duration_days=row.duration_days,
        workout_count=row.workout_count,
        price=PriceView(cents=row.price_in_cents, currency=row.currency),
        preview_type=row.preview_type,
        preview_workouts=_preview_decoder.decode(row.preview),
        seller=SellerView(name=row.seller_name, slug=row.seller_slug, logo_url=row.seller_logo_url),
    )
