"""Player routes: ``/me/courses/*``. Owner of the entitlement only; membership is not needed."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from coursemesh.chassis.auth import Principal, authenticated, principal_of
from coursemesh.chassis.db import Database
from coursemesh.learning.adapters.reader import CurriculumCache, SqlPlayerReader
from coursemesh.learning.adapters.store import SqlStore
from coursemesh.learning.app import player
from coursemesh.learning.app.player import Clock, CompletionResult
from coursemesh.learning.app.ports import Enrollment, Workout
from coursemesh.learning.domain.player import current_day_offset
from coursemesh.learning.http.clock import TimeZoneHeader, TimeZoneQuery, clock_of
from coursemesh.learning.http.schemas import (
    CompleteRequest,
    CompletionOut,
    DayOffset,
    EnrollmentOut,
    EntitlementOut,
    Library,
    LibraryCourse,
    OccurrenceOut,
    PlayerCourse,
    PlayerDay,
    PlayerItem,
    PlayerWorkout,
    Progress,
    StartRequest,
    WorkoutSummary,
)


def _enrollment_out(enrollment: Enrollment) -> EnrollmentOut:
    return EnrollmentOut(
        entitlement_id=enrollment.entitlement_id,
        start_date=enrollment.start_date,
        completed_at=enrollment.completed_at,
        restart_count=enrollment.restart_count,
        last_activity_at=enrollment.last_activity_at,
    )


def _completion_out(workout_id: uuid.UUID, result: CompletionResult) -> CompletionOut:
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


class PlayerController(Controller):
    path = "/me/courses"
    guards = [authenticated]

    @get("/")
    async def list_courses(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
    ) -> Library:
        async with db.unit_of_work() as uow:
            entries = await player.library(SqlStore(uow.session), principal.sub)
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
                    current_day_offset=current_day_offset(e.start_date, clock.today),
                    completed_at=e.completed_at,
                    progress=Progress(completed=e.completed_items, total=e.total_items),
                )
                for e in entries
            ]
        )

    @get("/{course_id:uuid}")
    async def open_course(
        self,
        request: Request[Any, Any, Any],
        course_id: FromPath[uuid.UUID],
        tz: TimeZoneQuery = None,
        x_timezone: TimeZoneHeader = None,
    ) -> PlayerCourse:
        # The most frequent request: no dependencies (Litestar resolves two or more through an
        # anyio task group, which cost more than this handler's own work).
        state = request.app.state
        db: Database = state.db
        curricula: CurriculumCache = state.curricula
        clock = clock_of(state, tz, x_timezone)
        async with db.reading() as conn:
            view = await player.open_course(
                SqlPlayerReader(conn, curricula), principal_of(request).sub, course_id, clock
            )
        done = {c.item_id for c in view.completions}
        enrollment = view.enrollment
        start_date = None if enrollment is None else enrollment.start_date
        summaries = {w: _summary(workout) for w, workout in view.workouts.items()}
        days = [
            PlayerDay(
                day_offset=day.day_offset,
                is_rest=day.is_rest,
                items=[
                    PlayerItem(
                        item_id=item.item_id,
                        workout_id=item.workout_id,
                        position=item.position,
                        completed=item.item_id in done,
                        workout=summaries.get(item.workout_id),
                    )
                    for item in day.items
                ],
            )
            for day in view.days
        ]
        return PlayerCourse(
            course_id=view.course.course_id,
            organization_id=view.course.organization_id,
            name=view.course.name,
            image_url=view.course.image_url,
            course_status=view.course.status,
            duration_days=len(view.days),
            curriculum_version=view.course.curriculum_version,
            entitlement=EntitlementOut(
                id=view.entitlement.entitlement_id,
                status=view.entitlement.status,
                start_date=start_date,
                completed_at=None if enrollment is None else enrollment.completed_at,
                restart_count=0 if enrollment is None else enrollment.restart_count,
                last_activity_at=None if enrollment is None else enrollment.last_activity_at,
            ),
            current_day_offset=current_day_offset(start_date, view.today),
            days=days,
            completed_course_workout_ids=sorted({c.workout_id for c in view.completions}),
            completed_item_ids=sorted(done),
            progress=Progress(completed=len(done), total=sum(len(d.items) for d in view.days)),
        )

    @post("/{course_id:uuid}/start", status_code=200)
    async def start(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        course_id: FromPath[uuid.UUID],
        data: JSONBody[StartRequest | None] = None,
    ) -> EnrollmentOut:
        start_date = None if data is None else data.start_date
        async with db.unit_of_work() as uow:
            enrollment = await player.start(
                uow, SqlStore(uow.session), principal.sub, course_id, start_date, clock
            )
        return _enrollment_out(enrollment)

    @post("/{course_id:uuid}/restart", status_code=200)
    async def restart(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        course_id: FromPath[uuid.UUID],
    ) -> EnrollmentOut:
        async with db.unit_of_work() as uow:
            enrollment = await player.restart(
                uow, SqlStore(uow.session), principal.sub, course_id, clock
            )
        return _enrollment_out(enrollment)

    @get("/{course_id:uuid}/workouts/{workout_id:uuid}")
    async def read_workout(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        course_id: FromPath[uuid.UUID],
        workout_id: FromPath[uuid.UUID],
    ) -> PlayerWorkout:
        async with db.unit_of_work() as uow:
            view = await player.read_workout(
                SqlStore(uow.session), principal.sub, course_id, workout_id
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

    @post("/{course_id:uuid}/workouts/{workout_id:uuid}/complete", status_code=200)
    async def mark_complete(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        course_id: FromPath[uuid.UUID],
        workout_id: FromPath[uuid.UUID],
        data: JSONBody[CompleteRequest | None] = None,
    ) -> CompletionOut:
        day_offset = None if data is None else data.day_offset
        async with db.unit_of_work() as uow:
            result = await player.mark_complete(
                uow, SqlStore(uow.session), principal.sub, course_id, workout_id, day_offset, clock
            )
        return _completion_out(workout_id, result)

    @delete("/{course_id:uuid}/workouts/{workout_id:uuid}/complete", status_code=200)
    async def unmark_complete(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        course_id: FromPath[uuid.UUID],
        workout_id: FromPath[uuid.UUID],
        day_offset: Annotated[DayOffset | None, QueryParameter(name="dayOffset")] = None,
    ) -> CompletionOut:
        async with db.unit_of_work() as uow:
            result = await player.unmark_complete(
                uow, SqlStore(uow.session), principal.sub, course_id, workout_id, day_offset, clock
            )
        return _completion_out(workout_id, result)


def _summary(workout: Workout | None) -> WorkoutSummary | None:
    if workout is None:
        return None
    return WorkoutSummary(
        title=workout.title,
        description=workout.description,
        duration_minutes=workout.duration_minutes,
    )
