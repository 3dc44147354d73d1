"""HTTP routes of custom-gen (camelCase on the wire). Every route needs a bearer token."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED

from coursemesh.chassis.auth import Principal, authenticated
from coursemesh.chassis.consistency import CONSISTENT_READ
from coursemesh.chassis.openapi import problems
from coursemesh.customgen.app import queries, regen
from coursemesh.customgen.app.submit import submit_custom_course
from coursemesh.customgen.app.views import (
    CourseDetail,
    CourseSummary,
    PurchaseView,
    RegenRequestView,
)
from coursemesh.customgen.bootstrap import runtime
from coursemesh.customgen.domain.intake import Intake
from coursemesh.customgen.domain.regen import RegenStatus

Reason = Annotated[str, msgspec.Meta(min_length=3, max_length=500)]


class SubmitCourse(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    purchase_id: uuid.UUID
    intake: Intake


class Submitted(msgspec.Struct, rename="camel", kw_only=True):
    id: uuid.UUID
    status: str


class NewRegenRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    audio_id: uuid.UUID
    reason: Reason


class Decision(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    note: Annotated[str, msgspec.Meta(max_length=500)] | None = None


# The refusals of the use cases (coursemesh.customgen.domain), for the routes' documents.
NO_COURSE = (404, "CUSTOM_COURSE_NOT_FOUND")
DECISION = problems((404, "REGEN_REQUEST_NOT_FOUND"), (409, "REGEN_ALREADY_DECIDED"))


class MyCustomCourses(Controller):
    path = "/me"
    guards = [authenticated]

    # Purchases are made in commerce and announced by events: always current.
    @get("/custom-course-purchases", opt={CONSISTENT_READ: True})
    async def my_purchases(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal]
    ) -> list[PurchaseView]:
        return await queries.list_purchases(runtime(request).courses, principal.sub)

    @post(
        "/custom-courses",
        status_code=HTTP_202_ACCEPTED,
        opt=problems(
            (400, "INTAKE_INVALID"), (404, "PURCHASE_NOT_FOUND"), (409, "PURCHASE_ALREADY_USED")
        ),
    )
    async def submit(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        data: JSONBody[SubmitCourse],
    ) -> Submitted:
        rt = runtime(request)
        course_id = await submit_custom_course(
            rt.courses,
            user_id=principal.sub,
            purchase_id=data.purchase_id,
            intake=data.intake,
            script_writer=rt.adapters.writer.name,
            wake_worker=rt.runner.wake,
        )
        return Submitted(id=course_id, status="generating")

    @get("/custom-courses")
    async def my_courses(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal]
    ) -> list[CourseSummary]:
        return await queries.list_courses(runtime(request).courses, principal.sub)

    @get("/custom-courses/{course_id:uuid}", opt=problems(NO_COURSE))
    async def my_course(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        course_id: FromPath[uuid.UUID],
    ) -> CourseDetail:
        rt = runtime(request)
        return await queries.get_course(rt.courses, rt.adapters.store, principal.sub, course_id)

    @post(
        "/custom-courses/{course_id:uuid}/regen-requests",
        status_code=HTTP_201_CREATED,
        opt=problems(
            NO_COURSE,
            (404, "AUDIO_NOT_FOUND"),
            (409, "COURSE_NOT_READY"),
            (409, "REGEN_ALREADY_OPEN"),
            (429, "REGEN_DAILY_LIMIT"),
        ),
    )
    async def request_regen(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        course_id: FromPath[uuid.UUID],
        data: JSONBody[NewRegenRequest],
    ) -> RegenRequestView:
        rt = runtime(request)
        return await regen.create_regen_request(
            rt.courses,
            user_id=principal.sub,
            course_id=course_id,
            audio_id=data.audio_id,
            reason=data.reason,
            daily_limit=rt.settings.regen_daily_limit,
        )

    @get("/custom-courses/{course_id:uuid}/regen-requests", opt=problems(NO_COURSE))
    async def my_regen_requests(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        course_id: FromPath[uuid.UUID],
    ) -> list[RegenRequestView]:
        return await regen.list_my_regen_requests(
            runtime(request).courses, principal.sub, course_id
        )


class OrganizationCustomCourses(Controller):
    """Staff of the organization that sold the courses."""

    path = "/organizations/{organization_id:uuid}"
    guards = [authenticated]

    @get("/custom-courses")
    async def org_courses(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        organization_id: FromPath[uuid.UUID],
    ) -> list[CourseSummary]:
        return await queries.list_org_courses(
            runtime(request).courses, staff_user_id=principal.sub, organization_id=organization_id
        )

    @get("/regen-requests")
    async def org_regen_requests(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        organization_id: FromPath[uuid.UUID],
        status: FromQuery[RegenStatus | None] = None,
    ) -> list[RegenRequestView]:
        return await regen.list_org_regen_requests(
            runtime(request).courses,
            staff_user_id=principal.sub,
            organization_id=organization_id,
            status=status,
        )

    @post("/regen-requests/{request_id:uuid}/approve", status_code=200, opt=DECISION)
    async def approve(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        organization_id: FromPath[uuid.UUID],
        request_id: FromPath[uuid.UUID],
        data: JSONBody[Decision | None] = None,
    ) -> RegenRequestView:
        rt = runtime(request)
        return await regen.decide_on_regen_request(
            rt.courses,
            organization_id=organization_id,
            request_id=request_id,
            staff_user_id=principal.sub,
            approve=True,
            note=data.note if data else None,
            wake_worker=rt.runner.wake,
        )

    @post("/regen-requests/{request_id:uuid}/reject", status_code=200, opt=DECISION)
    async def reject(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        organization_id: FromPath[uuid.UUID],
        request_id: FromPath[uuid.UUID],
        data: JSONBody[Decision | None] = None,
    ) -> RegenRequestView:
        return await regen.decide_on_regen_request(
            runtime(request).courses,
            organization_id=organization_id,
            request_id=request_id,
            staff_user_id=principal.sub,
            approve=False,
            note=data.note if data else None,
        )
