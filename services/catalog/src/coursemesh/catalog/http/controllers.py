"""Staff endpoints under ``/organizations``: organizations, members, workouts, courses."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from msgspec import UnsetType

from coursemesh.catalog.app import courses, organizations, workouts
from coursemesh.catalog.app.ports import CatalogStore
from coursemesh.catalog.app.views import (
    CourseView,
    MemberView,
    OrganizationPage,
    OrganizationView,
    WorkoutView,
)
from coursemesh.catalog.bootstrap import runtime
from coursemesh.catalog.domain.course import CourseEdit
from coursemesh.catalog.domain.organization import OrganizationEdit
from coursemesh.catalog.domain.workout import WorkoutEdit
from coursemesh.catalog.http import schemas
from coursemesh.chassis.auth import Principal, authenticated
from coursemesh.chassis.openapi import problems
from coursemesh.chassis.paging import Offset

Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=100)]

# The refusals of the use cases (coursemesh.catalog.domain), for the routes' documents.
NO_ORGANIZATION = (404, "ORGANIZATION_NOT_FOUND")
STAFF_ONLY = (403, "STAFF_ROLE_REQUIRED")
ADMIN_ONLY = (403, "ADMIN_ROLE_REQUIRED")
OWNER_ONLY = (403, "OWNER_ROLE_REQUIRED")
INVALID_CURRENCY = (422, "INVALID_CURRENCY")
SLUG_TAKEN = (409, "SLUG_TAKEN")
NO_MEMBER = (404, "MEMBER_NOT_FOUND")
LAST_OWNER = (409, "LAST_OWNER")
NO_WORKOUT = (404, "WORKOUT_NOT_FOUND")
NO_COURSE = (404, "COURSE_NOT_FOUND")
INVALID_STATUS = (409, "INVALID_COURSE_STATUS")
STAFF_IN_ORGANIZATION = problems(NO_ORGANIZATION, STAFF_ONLY)
STAFF_ON_WORKOUT = problems(NO_ORGANIZATION, STAFF_ONLY, NO_WORKOUT)
STAFF_ON_COURSE = problems(NO_ORGANIZATION, STAFF_ONLY, NO_COURSE)


def _catalog(request: Request[Any, Any, Any]) -> CatalogStore:
    return runtime(request).catalog


class OrganizationController(Controller):
    path = "/organizations"
    guards = [authenticated]

    @post("/", opt=problems(INVALID_CURRENCY, SLUG_TAKEN))
    async def create(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        data: JSONBody[schemas.CreateOrganization],
    ) -> OrganizationView:
        return await organizations.create_organization(
            _catalog(request),
            actor=principal.sub,
            name=data.name,
            slug=data.slug,
            logo_url=data.logo_url,
            currency=data.currency,
        )

    @get("/")
    async def list_mine(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> OrganizationPage:
        """The caller's organizations (any role), by name then id, each with the caller's
        role."""
        return await organizations.list_my_organizations(
            _catalog(request), actor=principal.sub, limit=limit, offset=offset
        )

    @get("/{org_id:uuid}", opt=problems(NO_ORGANIZATION))
    async def read(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
    ) -> OrganizationView:
        return await organizations.get_organization(
            _catalog(request), actor=principal.sub, organization_id=org_id
        )

    @patch(
        "/{org_id:uuid}", opt=problems(NO_ORGANIZATION, ADMIN_ONLY, INVALID_CURRENCY, SLUG_TAKEN)
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.UpdateOrganization],
    ) -> OrganizationView:
        return await organizations.update_organization(
            _catalog(request),
            actor=principal.sub,
            organization_id=org_id,
            edit=OrganizationEdit(
                name=data.name, slug=data.slug, logo_url=data.logo_url, currency=data.currency
            ),
        )

    @get("/{org_id:uuid}/members", opt=problems(NO_ORGANIZATION))
    async def members(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
    ) -> list[MemberView]:
        return await organizations.list_members(
            _catalog(request), actor=principal.sub, organization_id=org_id
        )

    @post(
        "/{org_id:uuid}/members",
        opt=problems(NO_ORGANIZATION, ADMIN_ONLY, OWNER_ONLY, (409, "MEMBER_EXISTS")),
    )
    async def add_member(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.AddMember],
    ) -> MemberView:
        return await organizations.add_member(
            _catalog(request),
            actor=principal.sub,
            organization_id=org_id,
            user_id=data.user_id,
            role=data.role,
        )

    @patch(
        "/{org_id:uuid}/members/{user_id:str}",
        opt=problems(NO_ORGANIZATION, NO_MEMBER, ADMIN_ONLY, OWNER_ONLY, LAST_OWNER),
    )
    async def change_member(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        user_id: FromPath[str],
        data: JSONBody[schemas.ChangeMember],
    ) -> MemberView | None:
        return await organizations.change_member(
            _catalog(request),
            actor=principal.sub,
            organization_id=org_id,
            user_id=user_id,
            role=data.role,
        )

    @delete(
        "/{org_id:uuid}/members/{user_id:str}",
        opt=problems(NO_ORGANIZATION, NO_MEMBER, ADMIN_ONLY, OWNER_ONLY, LAST_OWNER),
    )
    async def remove_member(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        user_id: FromPath[str],
    ) -> None:
        await organizations.change_member(
            _catalog(request),
            actor=principal.sub,
            organization_id=org_id,
            user_id=user_id,
            role=None,
        )


class WorkoutController(Controller):
    path = "/organizations/{org_id:uuid}/workouts"
    guards = [authenticated]

    @post("/", opt=STAFF_IN_ORGANIZATION)
    async def create(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.CreateWorkout],
    ) -> WorkoutView:
        return await workouts.create_workout(
            _catalog(request),
            actor=principal.sub,
            organization_id=org_id,
            title=data.title,
            description=data.description,
            duration_minutes=data.duration_minutes,
            instructions=data.instructions,
            media_urls=data.media_urls,
        )

    @get("/", opt=STAFF_IN_ORGANIZATION)
    async def list_all(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
    ) -> list[WorkoutView]:
        return await workouts.list_workouts(
            _catalog(request), actor=principal.sub, organization_id=org_id
        )

    @get("/{workout_id:uuid}", opt=STAFF_ON_WORKOUT)
    async def read(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        workout_id: FromPath[uuid.UUID],
    ) -> WorkoutView:
        return await workouts.get_workout(
            _catalog(request), actor=principal.sub, organization_id=org_id, workout_id=workout_id
        )

    @patch("/{workout_id:uuid}", opt=STAFF_ON_WORKOUT)
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        workout_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.UpdateWorkout],
    ) -> WorkoutView:
        return await workouts.update_workout(
            _catalog(request),
            actor=principal.sub,
            organization_id=org_id,
            workout_id=workout_id,
            edit=WorkoutEdit(
                title=data.title,
                description=data.description,
                duration_minutes=data.duration_minutes,
                instructions=data.instructions,
                media_urls=(
                    data.media_urls
                    if isinstance(data.media_urls, UnsetType)
                    else tuple(data.media_urls)
                ),
            ),
        )

    @delete("/{workout_id:uuid}", opt=STAFF_ON_WORKOUT)
    async def remove(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        workout_id: FromPath[uuid.UUID],
    ) -> None:
        await workouts.delete_workout(
            _catalog(request), actor=principal.sub, organization_id=org_id, workout_id=workout_id
        )


class CourseController(Controller):
    path = "/organizations/{org_id:uuid}/courses"
    guards = [authenticated]

    @post("/", opt=STAFF_IN_ORGANIZATION)
    async def create(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.CreateCourse],
    ) -> CourseView:
        return await courses.create_course(
            _catalog(request),
            actor=principal.sub,
            organization_id=org_id,
            name=data.name,
            description=data.description,
            image_url=data.image_url,
            duration_days=data.duration_days,
            preview_type=data.preview_type,
        )

    @get("/", opt=STAFF_IN_ORGANIZATION)
    async def list_all(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
    ) -> list[CourseView]:
        return await courses.list_courses(
            _catalog(request), actor=principal.sub, organization_id=org_id
        )

    @get("/{course_id:uuid}", opt=STAFF_ON_COURSE)
    async def read(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        course_id: FromPath[uuid.UUID],
    ) -> CourseView:
        return await courses.get_course(
            _catalog(request), actor=principal.sub, organization_id=org_id, course_id=course_id
        )

    @patch(
        "/{course_id:uuid}",
        opt=problems(NO_ORGANIZATION, STAFF_ONLY, NO_COURSE, (409, "DURATION_BELOW_CURRICULUM")),
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        course_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.UpdateCourse],
    ) -> CourseView:
        return await courses.update_course(
            _catalog(request),
            actor=principal.sub,
            organization_id=org_id,
            course_id=course_id,
            edit=CourseEdit(
                name=data.name,
                description=data.description,
                image_url=data.image_url,
                duration_days=data.duration_days,
                preview_type=data.preview_type,
                release_mode=data.release_mode,
                max_pauses=data.max_pauses,
                max_pause_days=data.max_pause_days,
            ),
        )

    @post(
        "/{course_id:uuid}/days",
        status_code=200,
        opt=problems(
            NO_ORGANIZATION,
            STAFF_ONLY,
            NO_COURSE,
            (422, "DAY_OFFSET_OUT_OF_RANGE"),
            (422, "REST_DAY_WITH_WORKOUTS"),
            (422, "UNKNOWN_WORKOUT"),
        ),
    )
    async def set_day(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        course_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.SetDay],
    ) -> CourseView:
        return await courses.set_day(
            _catalog(request),
            actor=principal.sub,
            organization_id=org_id,
            course_id=course_id,
            day_offset=data.day_offset,
            workout_ids=data.workout_ids,
            is_rest=data.is_rest,
        )

    @post(
        "/{course_id:uuid}/publish",
        status_code=200,
        opt=problems(
            NO_ORGANIZATION,
            STAFF_ONLY,
            NO_COURSE,
            (409, "COURSE_ALREADY_PUBLISHED"),
            INVALID_STATUS,
            (409, "CURRICULUM_EMPTY"),
        ),
    )
    async def publish(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        course_id: FromPath[uuid.UUID],
    ) -> CourseView:
        return await courses.publish_course(
            _catalog(request), actor=principal.sub, organization_id=org_id, course_id=course_id
        )

    @delete(
        "/{course_id:uuid}",
        status_code=200,
        opt=problems(
            NO_ORGANIZATION, STAFF_ONLY, NO_COURSE, (409, "COURSE_ALREADY_ARCHIVED"), INVALID_STATUS
        ),
    )
    async def archive(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        org_id: FromPath[uuid.UUID],
        course_id: FromPath[uuid.UUID],
    ) -> CourseView:
        return await courses.archive_course(
            _catalog(request), actor=principal.sub, organization_id=org_id, course_id=course_id
        )
