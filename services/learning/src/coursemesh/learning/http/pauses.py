"""Pause, resume and unlock routes: the buyer's (``/me/courses/:id/pause|resume``) and staff's
for one buyer, beside the drill-down
(``/organizations/:orgId/courses/:id/enrollments/:entitlementId/pause|resume|unlock``).

"Today" is the calendar day in the zone the request names (``tz`` / ``X-Timezone``): staff acting
for a buyer pass the buyer's zone.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from coursemesh.chassis.auth import Principal, authenticated
from coursemesh.chassis.openapi import problems
from coursemesh.learning.app import pauses
from coursemesh.learning.app.pauses import PauseOutcome
from coursemesh.learning.bootstrap import runtime
from coursemesh.learning.domain.model import Clock
from coursemesh.learning.http.player import NOT_OWNED
from coursemesh.learning.http.player_body import pauses_out
from coursemesh.learning.http.schemas import PauseState, UnlockRequest

# The refusals of a pause and of a resume (coursemesh.learning.domain.schedule).
PAUSE_REFUSALS = (
    (409, "ALREADY_PAUSED"),
    (409, "NOT_STARTED"),
    (409, "COURSE_COMPLETED"),
    (409, "PAUSE_LIMIT_REACHED"),
    (409, "PAUSE_DAYS_EXHAUSTED"),
)
RESUME_REFUSALS = ((409, "NOT_PAUSED"),)
STAFF_NOT_FOUND = ((404, "COURSE_NOT_FOUND"), (404, "ENROLLMENT_NOT_FOUND"))


def pause_state(outcome: PauseOutcome) -> PauseState:
    plan = outcome.schedule
    enrollment = outcome.enrollment
    return PauseState(
        entitlement_id=outcome.entitlement.entitlement_id,
        start_date=enrollment.start_date,
        current_day_offset=plan.current_day_offset,
        release_mode=plan.release_mode,
        paused=plan.paused,
        paused_since=plan.paused_since,
        paused_days=plan.paused_days,
        unlocked_at=enrollment.unlocked_at,
        unlocked_by=enrollment.unlocked_by,
        unlock_reason=enrollment.unlock_reason,
        pauses=pauses_out(outcome.pauses),
    )


class PauseController(Controller):
    path = "/me/courses/{course_id:uuid}"
    guards = [authenticated]

    @post("/pause", status_code=200, opt=problems(*NOT_OWNED, *PAUSE_REFUSALS))
    async def pause(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        course_id: FromPath[uuid.UUID],
    ) -> PauseState:
        """Pause the caller's course: the current day stands still, no day opens till resumed."""
        outcome = await pauses.pause(runtime(request).player, principal.sub, course_id, clock)
        return pause_state(outcome)

    @post("/resume", status_code=200, opt=problems(*NOT_OWNED, *RESUME_REFUSALS))
    async def resume(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        course_id: FromPath[uuid.UUID],
    ) -> PauseState:
        """Resume the caller's course: the schedule moves by the whole days paused."""
        outcome = await pauses.resume(runtime(request).player, principal.sub, course_id, clock)
        return pause_state(outcome)


class StaffPauseController(Controller):
    path = "/organizations/{org_id:uuid}/courses/{course_id:uuid}/enrollments/{entitlement_id:uuid}"
    guards = [authenticated]

    @post("/pause", status_code=200, opt=problems(*STAFF_NOT_FOUND, *PAUSE_REFUSALS))
    async def pause(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        org_id: FromPath[uuid.UUID],
        course_id: FromPath[uuid.UUID],
        entitlement_id: FromPath[uuid.UUID],
    ) -> PauseState:
        """Staff: pause the course for one buyer (``tz``: the buyer's zone)."""
        outcome = await pauses.staff_pause(
            runtime(request).player, principal.sub, org_id, course_id, entitlement_id, clock
        )
        return pause_state(outcome)

    @post("/resume", status_code=200, opt=problems(*STAFF_NOT_FOUND, *RESUME_REFUSALS))
    async def resume(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        org_id: FromPath[uuid.UUID],
        course_id: FromPath[uuid.UUID],
        entitlement_id: FromPath[uuid.UUID],
    ) -> PauseState:
        """Staff: resume the course for one buyer (``tz``: the buyer's zone)."""
        outcome = await pauses.staff_resume(
            runtime(request).player, principal.sub, org_id, course_id, entitlement_id, clock
        )
        return pause_state(outcome)

    @post("/unlock", status_code=200, opt=problems(*STAFF_NOT_FOUND))
    async def unlock(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        org_id: FromPath[uuid.UUID],
        course_id: FromPath[uuid.UUID],
        entitlement_id: FromPath[uuid.UUID],
        data: JSONBody[UnlockRequest],
    ) -> PauseState:
        """Staff: open every day of a daily-release course for one buyer (audited reason)."""
        outcome = await pauses.unlock(
            runtime(request).player,
            principal.sub,
            org_id,
            course_id,
            entitlement_id,
            data.reason,
            clock,
        )
        return pause_state(outcome)
