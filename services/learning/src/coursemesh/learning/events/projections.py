"""Projections of catalog's, commerce's and custom-gen's state, fed by their events.

Every handler runs inside the inbox transaction (a redelivery changes nothing) and applies an
aggregate's state only when the event is newer than what the row holds, so late or reordered
delivery is harmless. A course keeps one version per part its events carry (docs/events.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from coursemesh.chassis.consumer import Batched, Subscription
from coursemesh.chassis.db import UnitOfWork
from coursemesh.chassis.memberships import membership_projector
from coursemesh.chassis.projection import upsert_if_newer, upsert_many_if_newer
from coursemesh.chassis.rebuild import Projection
from coursemesh.chassis.transaction import Transaction
from coursemesh.contracts import Envelope
from coursemesh.contracts.catalog import (
    CourseArchived,
    CourseDetailsChanged,
    CoursePublished,
    CurriculumChanged,
    MembershipChanged,
    OrganizationUpserted,
    WorkoutDeleted,
    WorkoutUpserted,
)
from coursemesh.contracts.commerce import EntitlementChanged, EntitlementChangedV2
from coursemesh.contracts.customgen import CustomCourseContent
from coursemesh.learning.adapters.library import (
    stamp,
    stamp_courses,
    stamp_entitlements,
    stamp_workout,
)
from coursemesh.learning.adapters.tables import (
    completion_history,
    completions,
    courses,
    custom_courses,
    enrollments,
    entitlements,
    memberships,
    organizations,
    workouts,
)


async def _course_part(
    uow: UnitOfWork, env: Envelope[Any], values: dict[str, Any], version_column: str
) -> bool:
    payload = env.payload
    return await upsert_if_newer(
        uow.session,
        courses,
        {
            "course_id": payload.course_id,
            "organization_id": payload.organization_id,
            **values,
            version_column: env.aggregate_version,
        },
        key=["course_id"],
        version_column=version_column,
    )


async def on_course_details_changed(uow: UnitOfWork, env: Envelope[Any]) -> None:
    payload: CourseDetailsChanged = env.payload
    details = {
        "name": payload.name,
        "description": payload.description,
        "image_url": payload.image_url,
        "duration_days": payload.duration_days,
        "release_mode": payload.release_mode,
        "max_pauses": payload.max_pauses,
        "max_pause_days": payload.max_pause_days,
    }
    if await _course_part(uow, env, details, "details_version"):
        await stamp_courses(await uow.driver(), [payload.course_id])
    await _course_part(uow, env, {"status": payload.status}, "status_version")


async def on_course_published(uow: UnitOfWork, env: Envelope[Any]) -> None:
    payload: CoursePublished = env.payload
    lifecycle = {"published_at": payload.published_at, "archived_at": None}
    await _course_part(uow, env, lifecycle, "lifecycle_version")
    await _course_part(uow, env, {"status": "published"}, "status_version")


async def on_course_archived(uow: UnitOfWork, env: Envelope[Any]) -> None:
    payload: CourseArchived = env.payload
    # Archiving only hides the course from the storefront: existing buyers keep their access.
    await _course_part(uow, env, {"archived_at": payload.archived_at}, "lifecycle_version")
    await _course_part(uow, env, {"status": "archived"}, "status_version")


async def on_curriculum_changed(uow: UnitOfWork, env: Envelope[Any]) -> None:
    payload: CurriculumChanged = env.payload
    days = sorted(payload.days, key=lambda d: d.day_offset)
    item_ids = [item.item_id for day in days for item in day.items]
    applied = await _course_part(
        uow,
        env,
        {
            "curriculum_version": payload.curriculum_version,
            "curriculum_days": payload.duration_days,
            "curriculum": msgspec.to_builtins(days),
            "workout_item_count": len(item_ids),
        },
        "curriculum_event_version",
    )
    if applied:
        await _retire_vanished_items(uow, env, item_ids)
        # after the enrollments it updated: the player's writes lock those rows first too
        await stamp_courses(await uow.driver(), [payload.course_id])


async def _retire_vanished_items(uow: UnitOfWork, env: Envelope[Any], item_ids: list[Any]) -> None:
    """Completions of items that left the curriculum move to history; the others survive.

    An enrollment marked complete whose course gained items is complete no longer. (A course
    that lost its last open item is marked complete on the buyer's next completion call, which
    also publishes the event.)
    """
    session = uow.session
    course_enrollments = sa.select(enrollments.c.entitlement_id).where(
        enrollments.c.course_id == env.payload.course_id
    )
    vanished = (
        sa.delete(completions)
        .where(
            completions.c.entitlement_id.in_(course_enrollments),
            completions.c.item_id.not_in(item_ids) if item_ids else sa.true(),
        )
        .returning(*completions.c)
        .cte("vanished")
    )
    await session.execute(
        sa.insert(completion_history).from_select(
            [
                "entitlement_id",
                "item_id",
                "workout_id",
                "day_offset",
                "curriculum_version",
                "completed_at",
                "run",
                "reason",
                "archived_at",
            ],
            sa.select(
                vanished.c.entitlement_id,
                vanished.c.item_id,
                vanished.c.workout_id,
                vanished.c.day_offset,
                vanished.c.curriculum_version,
                vanished.c.completed_at,
                enrollments.c.restart_count,
                sa.literal("curriculum_changed"),
                sa.literal(env.occurred_at, sa.DateTime(timezone=True)),
            ).join_from(
                vanished, enrollments, enrollments.c.entitlement_id == vanished.c.entitlement_id
            ),
        )
    )
    done = (
        sa.select(sa.func.count())
        .select_from(completions)
        .where(completions.c.entitlement_id == enrollments.c.entitlement_id)
        .scalar_subquery()
    )
    await session.execute(
        sa.update(enrollments)
        .where(
            enrollments.c.course_id == env.payload.course_id,
            enrollments.c.completed_at.is_not(None),
            done < len(item_ids),
        )
        .values(completed_at=None)
    )


async def on_workout_upserted(uow: UnitOfWork, env: Envelope[Any]) -> None:
    payload: WorkoutUpserted = env.payload
    applied = await upsert_if_newer(
        uow.session,
        workouts,
        {
            "workout_id": payload.workout_id,
            "organization_id": payload.organization_id,
            "title": payload.title,
            "description": payload.description,
            "duration_minutes": payload.duration_minutes,
            "instructions": payload.instructions,
            "media_urls": list(payload.media_urls),
            "deleted_at": None,
            "version": env.aggregate_version,
        },
        key=["workout_id"],
    )
    if applied:
        await stamp_workout(await uow.driver(), payload.workout_id)


async def on_workout_deleted(uow: UnitOfWork, env: Envelope[Any]) -> None:
    payload: WorkoutDeleted = env.payload
    # Curricula still using it keep its last known content, so only the tombstone is set.
    await upsert_if_newer(
        uow.session,
        workouts,
        {
            "workout_id": payload.workout_id,
            "organization_id": payload.organization_id,
            "deleted_at": payload.deleted_at,
            "version": env.aggregate_version,
        },
        key=["workout_id"],
    )


async def on_entitlements_changed(uow: Transaction, envs: Sequence[Envelope[Any]]) -> None:
    """Every checkout publishes one: a run of them is projected with one statement."""
    await upsert_many_if_newer(
        uow,
        entitlements,
        [
            {
                "entitlement_id": env.payload.entitlement_id,
                "user_id": env.payload.user_id,
                "course_id": env.payload.course_id,
                "organization_id": env.payload.organization_id,
                "status": env.payload.status,
                "access_revoked_at": env.payload.access_revoked_at,
                "version": env.aggregate_version,
            }
            for env in envs
        ],
        key=["entitlement_id"],
    )
    await revoke_certificates(uow, [env.payload.entitlement_id for env in envs])
    await stamp_entitlements(await uow.driver(), [env.payload.entitlement_id for env in envs])


# A certificate attests access that was paid for: once its entitlement is revoked (refund, staff
# revocation) it is revoked for good, even if the entitlement is reactivated later. Read from the
# projection, not the events, so a late older event cannot revoke what a newer one left active.
_REVOKE_CERTIFICATES = """
UPDATE certificates c SET revoked_at = coalesce(e.access_revoked_at, now())
  FROM entitlements e
 WHERE c.entitlement_id = e.entitlement_id AND e.entitlement_id = ANY($1::uuid[])
   AND (e.status = 'revoked' OR e.access_revoked_at IS NOT NULL) AND c.revoked_at IS NULL
"""


async def revoke_certificates(uow: Transaction, entitlement_ids: list[Any]) -> None:
    await (await uow.driver()).execute(_REVOKE_CERTIFICATES, entitlement_ids)


async def on_organization_upserted(uow: UnitOfWork, env: Envelope[Any]) -> None:
    payload: OrganizationUpserted = env.payload
    await upsert_if_newer(
        uow.session,
        organizations,
        {
            "organization_id": payload.organization_id,
            "name": payload.name,
            "logo_url": payload.logo_url,
            "version": env.aggregate_version,
        },
        key=["organization_id"],
    )


on_membership_changed = membership_projector(memberships)


async def on_custom_course_content(uow: UnitOfWork, env: Envelope[Any]) -> None:
    """Only a newer version replaces the row; the buyer's devices fetch it on their next sync."""
    payload: CustomCourseContent = env.payload
    applied = await upsert_if_newer(
        uow.session,
        custom_courses,
        {
            "custom_course_id": payload.custom_course_id,
            "user_id": payload.user_id,
            "version": payload.version,
            "checksum": payload.checksum,
            "file_size_bytes": payload.file_size_bytes,
            "document": payload.document,
            "files": msgspec.to_builtins(payload.files),
            "updated_at": env.occurred_at,
        },
        key=["custom_course_id"],
    )
    if applied:
        await stamp(await uow.driver(), [(payload.user_id, payload.custom_course_id, False)])


def subscriptions() -> list[Subscription]:
    return Subscription.of(
        {
            CourseDetailsChanged: on_course_details_changed,
            CurriculumChanged: on_curriculum_changed,
            CoursePublished: on_course_published,
            CourseArchived: on_course_archived,
            WorkoutUpserted: on_workout_upserted,
            WorkoutDeleted: on_workout_deleted,
            EntitlementChangedV2: Batched(on_entitlements_changed),
            MembershipChanged: on_membership_changed,
            OrganizationUpserted: on_organization_upserted,
            CustomCourseContent: on_custom_course_content,
        },
        # A buyer's entitlement is applied only after the catalog events that existed by then
        # (the course commerce sold, its curriculum and publication), so the player never
        # serves an entitlement to a course it does not know yet.
        after={"COMMERCE": ("CATALOG",)},
    )


#: Rebuildable with ``coursemesh projection rebuild learning <name>``. Not ``courses``: a
#: curriculum change also retires the buyers' completions of vanished items, which a replay of
#: old curricula would repeat on the player state learning owns.
PROJECTIONS = (
    Projection(
        "workouts",
        tables=(workouts,),
        handlers={WorkoutUpserted: on_workout_upserted, WorkoutDeleted: on_workout_deleted},
        description="catalog's workouts, deleted ones as tombstones",
    ),
    Projection(
        "entitlements",
        tables=(entitlements,),
        handlers={EntitlementChangedV2: Batched(on_entitlements_changed)},
        # The stream's changes from before v2 exist only in v1; a change published in both
        # versions carries one aggregate version, applied once.
        history={EntitlementChanged: Batched(on_entitlements_changed)},
        description="commerce's entitlements: who may play which course",
    ),
    Projection(
        "memberships",
        tables=(memberships,),
        handlers={MembershipChanged: on_membership_changed},
        description="catalog's memberships: who is staff of an organization",
    ),
    Projection(
        "organizations",
        tables=(organizations,),
        handlers={OrganizationUpserted: on_organization_upserted},
        description="catalog's organizations: the branding certificates print",
    ),
    Projection(
        "custom_courses",
        tables=(custom_courses,),
        handlers={CustomCourseContent: on_custom_course_content},
        description="custom-gen's ready custom courses: what the buyers' devices sync",
    ),
)
