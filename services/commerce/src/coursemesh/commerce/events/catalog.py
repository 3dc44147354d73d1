"""Projections of catalog's events: organizations (branding, currency), memberships (staff,
and whether a buyer is a member of the seller), courses (name, status). Newest aggregate
version wins; stale events are ignored."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from coursemesh.chassis.consumer import Subscription
from coursemesh.chassis.db import UnitOfWork
from coursemesh.chassis.memberships import membership_projector
from coursemesh.chassis.projection import upsert_if_newer
from coursemesh.chassis.rebuild import Projection
from coursemesh.commerce.adapters.tables import courses, memberships, organizations
from coursemesh.contracts import Envelope
from coursemesh.contracts.catalog import (
    CourseArchived,
    CourseDetailsChanged,
    CoursePublished,
    MembershipChanged,
    OrganizationUpserted,
)


async def on_organization_upserted(uow: UnitOfWork, env: Envelope[Any]) -> None:
    p: OrganizationUpserted = env.payload
    await upsert_if_newer(
        uow.session,
        organizations,
        {
            "id": p.organization_id,
            "name": p.name,
            "slug": p.slug,
            "logo_url": p.logo_url,
            "currency": p.currency,
            "version": env.aggregate_version,
        },
        key=["id"],
    )


on_membership_changed = membership_projector(memberships)


async def _course_status(uow: UnitOfWork, env: Envelope[Any], status: str) -> None:
    """Every course event carries the status at its version: the newest one wins."""
    insert = pg_insert(courses).values(
        id=env.payload.course_id,
        organization_id=env.payload.organization_id,
        status=status,
        status_version=env.aggregate_version,
    )
    await uow.session.execute(
        insert.on_conflict_do_update(
            index_elements=[courses.c.id],
            set_={
                "status": insert.excluded.status,
                "status_version": insert.excluded.status_version,
            },
            where=courses.c.status_version < insert.excluded.status_version,
        )
    )


async def on_course_details_changed(uow: UnitOfWork, env: Envelope[Any]) -> None:
    p: CourseDetailsChanged = env.payload
    await _course_status(uow, env, p.status)
    await uow.session.execute(
        sa.update(courses)
        .where(courses.c.id == p.course_id, courses.c.details_version < env.aggregate_version)
        .values(name=p.name, details_version=env.aggregate_version)
    )


async def on_course_published(uow: UnitOfWork, env: Envelope[Any]) -> None:
    await _course_status(uow, env, "published")


async def on_course_archived(uow: UnitOfWork, env: Envelope[Any]) -> None:
    await _course_status(uow, env, "archived")


SUBSCRIPTIONS = Subscription.of(
    {
        OrganizationUpserted: on_organization_upserted,
        MembershipChanged: on_membership_changed,
        CourseDetailsChanged: on_course_details_changed,
        CoursePublished: on_course_published,
        CourseArchived: on_course_archived,
    }
)

#: Rebuildable with ``coursemesh projection rebuild commerce <name>``: each handler only
#: writes its own table.
PROJECTIONS = (
    Projection(
        "organizations",
        tables=(organizations,),
        handlers={OrganizationUpserted: on_organization_upserted},
        description="catalog's organizations: name, slug, logo, currency",
    ),
    Projection(
        "memberships",
        tables=(memberships,),
        handlers={MembershipChanged: on_membership_changed},
        description="catalog's memberships: staff, and buyers who belong to the seller",
    ),
    Projection(
        "courses",
        tables=(courses,),
        handlers={
            CourseDetailsChanged: on_course_details_changed,
            CoursePublished: on_course_published,
            CourseArchived: on_course_archived,
        },
        description="catalog's courses: name and status",
    ),
)
