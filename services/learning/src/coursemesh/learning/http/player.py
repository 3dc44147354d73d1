"""Player routes: ``/me/courses/*``. Owner of the entitlement only; membership is not needed."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, MediaType, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from coursemesh.chassis.auth import Principal, authenticate, authenticated
from coursemesh.chassis.consistency import CONSISTENT_READ
from coursemesh.chassis.fastroute import FastRoute
from coursemesh.chassis.openapi import SELF_AUTHENTICATED, problems
from coursemesh.chassis.responses import EncodedJson
from coursemesh.learning.app import certificates, player
from coursemesh.learning.bootstrap import runtime
from coursemesh.learning.domain.model import Clock, Enrollment
from coursemesh.learning.domain.player import CompletionOutcome, current_day_offset
from coursemesh.learning.domain.schedule import run_pauses, schedule_of_row
from coursemesh.learning.http.clock import TimeZone, clock_for
from coursemesh.learning.http.player_body import render_player_course
from coursemesh.learning.http.schemas import (
    CompleteRequest,
    CompletionOut,
    DayOffset,
    EnrollmentOut,
    Library,
    LibraryCourse,
    OccurrenceOut,
    PlayerCourse,
    PlayerWorkout,
    Progress,
    StartRequest,
)


def _enrollment_out(enrollment: Enrollment) -> EnrollmentOut:
    return EnrollmentOut(
        entitlement_id=enrollment.entitlement_id,
        start_date=enrollment.start_date,
        completed_at=enrollment.completed_at,
        restart_count=enrollment.restart_count,
        last_activity_at=enrollment.last_activity_at,
    )


def _completion_out(workout_id: uuid.UUID, result: CompletionOutcome) -> CompletionOut:
    occurrence = result.occurrence
    return CompletionOut(
        workout_id=workout_id,
        item_id=None if occurrence is None else occurrence.item_id,
        day_offset=None if occurrence is None else occurrence.day_offset,
        completed=result.completed,
        changed=result.changed,
        curriculum_version=result.curriculum_version,
        completed_item_ids=sorted(result.completed_item_ids),
        course_completed_at=result.enrollment.completed_at,
        progress=Progress(completed=len(result.completed_item_ids), total=result.total_items),
    )


# The refusals of the use cases (coursemesh.learning.domain.player), for the routes' documents:
# a course the caller does not own, and one whose entitlement is not (or no longer) active.
NOT_OWNED = (
    (404, "COURSE_NOT_OWNED"),
    (403, "ENTITLEMENT_REVOKED"),
    (403, "ENTITLEMENT_PENDING"),
    (403, "ENTITLEMENT_INACTIVE"),
)
NOT_IN_COURSE = (404, "WORKOUT_NOT_IN_COURSE")
DAY_LOCKED = (409, "DAY_LOCKED")  # a daily release has not opened the day yet
ON_A_DAY = (NOT_IN_COURSE, (404, "REST_DAY"), (404, "WORKOUT_NOT_ON_DAY"), DAY_LOCKED)


class PlayerController(Controller):
    path = "/me/courses"
    guards = [authenticated]

    # The library is the buyer's entitlements as commerce announced them: always current.
    @get("/", opt={CONSISTENT_READ: True})
    async def list_courses(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
    ) -> Library:
        entries = await player.library(runtime(request).player, principal.sub)
        return Library(
            courses=[
                LibraryCourse(
                    course_id=e.entitlement.course_id,
                    organization_id=e.entitlement.organization_id,
                    entitlement_id=e.entitlement.entitlement_id,
                    name=e.course_name,
                    image_url=e.image_url,
                    duration_days=e.duration_days,
                    start_date=e.start_date,
                    current_day_offset=current_day_offset(e.start_date, clock.today)
                    if not e.pauses
                    else schedule_of_row(
                        e.start_date,
                        run_pauses(e.pauses, e.restart_count),
                        clock.today,
                        e.max_pause_days,
                    ).current_day_offset,
                    completed_at=e.completed_at,
                    progress=Progress(completed=e.completed_items, total=e.total_items),
                )
                for e in entries
            ]
        )

    @post(
        "/{course_id:uuid}/start",
        status_code=200,
        opt=problems(*NOT_OWNED, (422, "START_DATE_OUT_OF_RANGE")),
    )
    async def start(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        course_id: FromPath[uuid.UUID],
        data: JSONBody[StartRequest | None] = None,
    ) -> EnrollmentOut:
        start_date = None if data is None else data.start_date
        enrollment = await player.start(
            runtime(request).player, principal.sub, course_id, start_date, clock
        )
        return _enrollment_out(enrollment)

    @post("/{course_id:uuid}/restart", status_code=200, opt=problems(*NOT_OWNED))
    async def restart(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        course_id: FromPath[uuid.UUID],
    ) -> EnrollmentOut:
        enrollment = await player.restart(runtime(request).player, principal.sub, course_id, clock)
        return _enrollment_out(enrollment)

    @get(
        "/{course_id:uuid}/workouts/{workout_id:uuid}",
        opt=problems(*NOT_OWNED, NOT_IN_COURSE, DAY_LOCKED),
    )
    async def read_workout(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        course_id: FromPath[uuid.UUID],
        workout_id: FromPath[uuid.UUID],
    ) -> PlayerWorkout:
        view = await player.read_workout(
            runtime(request).player, principal.sub, course_id, workout_id, clock
        )
        workout = view.workout
        return PlayerWorkout(
            workout_id=view.workout_id,
            title=None if workout is None else workout.title,
            description=None if workout is None else workout.description,
            duration_minutes=None if workout is None else workout.duration_minutes,
            instructions=None if workout is None else workout.instructions,
            media_urls=[] if workout is None else workout.media_urls,
            curriculum_version=view.curriculum_version,
            occurrences=[
                OccurrenceOut(
                    item_id=o.item_id,
                    day_offset=o.day_offset,
                    completed=o.item_id in view.completed_item_ids,
                )
                for o in view.occurrences
            ],
        )

    @post(
        "/{course_id:uuid}/workouts/{workout_id:uuid}/complete",
        status_code=200,
        opt=problems(*NOT_OWNED, *ON_A_DAY),
    )
    async def mark_complete(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        course_id: FromPath[uuid.UUID],
        workout_id: FromPath[uuid.UUID],
        data: JSONBody[CompleteRequest | None] = None,
    ) -> CompletionOut:
        day_offset = None if data is None else data.day_offset
        found = runtime(request)
        result = await player.mark_complete(
            found.player, principal.sub, course_id, workout_id, day_offset, clock, principal.name
        )
        if result.certificate is not None and not result.certificate.stored:
            # After the completion committed: the object store is not called under its lock.
            await certificates.keep_pdf(
                found.player, found.certificate_files, found.render_certificate, result.certificate
            )
        return _completion_out(workout_id, result)

    @delete(
        "/{course_id:uuid}/workouts/{workout_id:uuid}/complete",
        status_code=200,
        opt=problems(*NOT_OWNED, *ON_A_DAY),
    )
    async def unmark_complete(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        course_id: FromPath[uuid.UUID],
        workout_id: FromPath[uuid.UUID],
        day_offset: Annotated[DayOffset | None, QueryParameter(name="dayOffset")] = None,
    ) -> CompletionOut:
        result = await player.unmark_complete(
            runtime(request).player, principal.sub, course_id, workout_id, day_offset, clock
        )
        return _completion_out(workout_id, result)


# The most frequent request of the suite, so it gives Litestar nothing to resolve: no guard (a
# guard runs on a copy of the route handler, made per request), no dependencies (two or more go
# through an anyio task group), no declared parameters (the time zone is declared once, as
# ``TimeZone``, and ``OPEN_COURSE`` checks it and documents it as Litestar would). The caller is
# verified first, as the ``authenticated`` guard of the other routes does. The body is rendered
# around the curriculum's pre-rendered days (``player_body``), not built as Structs.
OPEN_COURSE = FastRoute(params=TimeZone)


@get(
    "/me/courses/{course_id:uuid}",
    media_type=MediaType.JSON,
    description="The course as its buyer sees it: entitlement, dense curriculum, completions "
    "and the current day in the buyer's time zone.",
    responses={
        200: ResponseSpec(
            PlayerCourse,
            description="The course as the buyer sees it",
            # Made-up examples (random strings, dates relative to now) would only mislead, and
            # would change the committed contract (docs/openapi.json) at every generation.
            generate_examples=False,
        )
    },
    **OPEN_COURSE.route_options(),
    opt={**SELF_AUTHENTICATED, **problems(*NOT_OWNED)},
)
async def open_course(request: Request[Any, Any, Any]) -> EncodedJson:
    principal = await authenticate(request)
    zone = OPEN_COURSE.params(request)
    clock = clock_for(request, zone.tz, zone.x_timezone)
    course_id: uuid.UUID = request.path_params["course_id"]
    found = runtime(request)
    view = await player.open_course(found.player, principal.sub, course_id, clock)
    return EncodedJson(render_player_course(view, found.courses))
