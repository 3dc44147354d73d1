"""HTTP routes of custom-gen (camelCase on the wire). Every route needs a bearer token."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED

from coursemesh.chassis.auth import Principal, authenticated
from coursemesh.chassis.consistency import CONSISTENT_READ
from coursemesh.chassis.db import Database
from coursemesh.customgen.adapters.runtime import Runtime
from coursemesh.customgen.app import queries, regen
from coursemesh.customgen.app.submit import submit_custom_course
from coursemesh.customgen.domain.intake import Intake

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


RegenStatus = Literal["open", "approved", "rejected", "completed", "failed"]


def runtime_of(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.ctx.extras["runtime"]
    return runtime


class MyCustomCourses(Controller):
    path = "/me"
    guards = [authenticated]

    # Purchases are made in commerce and announced by events: always current.
    @get("/custom-course-purchases", opt={CONSISTENT_READ: True})
    async def my_purchases(
        self, db: NamedDependency[Database], principal: NamedDependency[Principal]
    ) -> list[queries.PurchaseView]:
        return await queries.list_purchases(db, principal.sub)

    @post("/custom-courses", status_code=HTTP_202_ACCEPTED)
    async def submit(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        data: JSONBody[SubmitCourse],
    ) -> Submitted:
        runtime = runtime_of(request)
        course_id = await submit_custom_course(
            db,
            user_id=principal.sub,
            purchase_id=data.purchase_id,
            intake=data.intake,
            script_writer=runtime.adapters.writer.name,
            wake_worker=runtime.runner.wake,
        )
        return Submitted(id=course_id, status="generating")

    @get("/custom-courses")
    async def my_courses(
        self, db: NamedDependency[Database], principal: NamedDependency[Principal]
    ) -> list[queries.CourseSummary]:
        return await queries.list_courses(db, principal.sub)

    @get("/custom-courses/{course_id:uuid}")
    async def my_course(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        course_id: FromPath[uuid.UUID],
    ) -> queries.CourseDetail:
        store = runtime_of(request).adapters.store
        return await queries.get_course(db, store, principal.sub, course_id)

    @post("/custom-courses/{course_id:uuid}/regen-requests", status_code=HTTP_201_CREATED)
    async def request_regen(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        course_id: FromPath[uuid.UUID],
        data: JSONBody[NewRegenRequest],
    ) -> regen.RegenRequestView:
        return await regen.create_regen_request(
            db,
            user_id=principal.sub,
            course_id=course_id,
            audio_id=data.audio_id,
            reason=data.reason,
            daily_limit=runtime_of(request).settings.regen_daily_limit,
        )

    @get("/custom-courses/{course_id:uuid}/regen-requests")
    async def my_regen_requests(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        course_id: FromPath[uuid.UUID],
    ) -> list[regen.RegenRequestView]:
        return await regen.list_my_regen_requests(db, principal.sub, course_id)


class OrganizationCustomCourses(Controller):
    """Staff of the organization that sold the courses."""

    path = "/organizations/{organization_id:uuid}"
    guards = [authenticated]

    @get("/custom-courses")
    async def org_courses(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        organization_id: FromPath[uuid.UUID],
    ) -> list[queries.CourseSummary]:
        await regen.require_staff(db, organization_id, principal.sub)
        return await queries.list_org_courses(db, organization_id)

    @get("/regen-requests")
    async def org_regen_requests(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        organization_id: FromPath[uuid.UUID],
        status: FromQuery[RegenStatus | None] = None,
    ) -> list[regen.RegenRequestView]:
        await regen.require_staff(db, organization_id, principal.sub)
        return await regen.list_org_regen_requests(db, organization_id, status)

    @post("/regen-requests/{request_id:uuid}/approve", status_code=200)
    async def approve(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        organization_id: FromPath[uuid.UUID],
        request_id: FromPath[uuid.UUID],
        data: JSONBody[Decision | None] = None,
    ) -> regen.RegenRequestView:
        await regen.require_staff(db, organization_id, principal.sub)
        return await regen.decide_regen_request(
            db,
            organization_id=organization_id,
            request_id=request_id,
            staff_user_id=principal.sub,
            approve=True,
            note=data.note if data else None,
            wake_worker=runtime_of(request).runner.wake,
        )

    @post("/regen-requests/{request_id:uuid}/reject", status_code=200)
    async def reject(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        organization_id: FromPath[uuid.UUID],
        request_id: FromPath[uuid.UUID],
        data: JSONBody[Decision | None] = None,
    ) -> regen.RegenRequestView:
        await regen.require_staff(db, organization_id, principal.sub)
        return await regen.decide_regen_request(
            db,
            organization_id=organization_id,
            request_id=request_id,
            staff_user_id=principal.sub,
            approve=False,
            note=data.note if data else None,
        )
