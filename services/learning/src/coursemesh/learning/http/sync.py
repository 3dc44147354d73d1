"""Offline sync routes: ``/me/sync`` (the buyer's library changes since a cursor),
``/me/sync/operations`` (changes a device made offline), ``/me/sync/sanity`` (what a device
holds against the library). The caller is the buyer: the token's subject."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from coursemesh.chassis.auth import Principal, authenticated
from coursemesh.chassis.consistency import CONSISTENT_READ
from coursemesh.chassis.errors import Unprocessable
from coursemesh.chassis.openapi import problems
from coursemesh.learning.app import certificates, sync
from coursemesh.learning.bootstrap import runtime
from coursemesh.learning.domain.model import Clock
from coursemesh.learning.domain.sync import Operation
from coursemesh.learning.http.schemas import (
    MAX_SANITY_COURSES,
    AppliedOut,
    CourseStateOut,
    OperationsOut,
    OperationsRequest,
    RejectedOut,
    SanityOut,
    SanityRequest,
    SyncOut,
    SyncRequest,
)

CURSOR_INVALID = (422, "SYNC_CURSOR_INVALID")
WORKOUT_REQUIRED = (422, "SYNC_WORKOUT_REQUIRED")
TOO_MANY_COURSES = (422, "SYNC_TOO_MANY_COURSES")


def _operations(body: OperationsRequest) -> list[Operation]:
    """The batch, refused whole (nothing applied) when an operation lacks what it needs."""
    for op in body.operations:
        if op.type in ("complete", "unmark") and op.workout_id is None:
            raise Unprocessable(
                f"Operation {op.id} ({op.type}) needs a workoutId",
                code=WORKOUT_REQUIRED[1],
            )
    return [
        Operation(
            id=op.id,
            type=op.type,
            course_id=op.course_id,
            at=op.at,
            workout_id=op.workout_id,
            day_offset=op.day_offset,
        )
        for op in body.operations
    ]


# The library a device syncs is the buyer's entitlements as commerce announced them, and an
# offline operation's refusal (not owned, revoked) is reported in a 200, not raised: every route
# catches up with the streams first, so a course bought the moment before is already there.
class SyncController(Controller):
    path = "/me/sync"
    guards = [authenticated]

    @post("/", status_code=200, opt={CONSISTENT_READ: True, **problems(CURSOR_INVALID)})
    async def changes(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        data: JSONBody[SyncRequest | None] = None,
    ) -> SyncOut:
        """The buyer's course documents changed after ``cursor`` (every one without it), a page
        at a time: while ``more``, send the answer's ``cursor`` again. A custom course's audio
        files are in ``files``, each with the gateway ``path`` that streams it."""
        cursor = None if data is None else (data.page or data.cursor)
        found = runtime(request)
        page = await sync.changes(
            found.player, principal.sub, cursor, found.settings.sync_page_size
        )
        return SyncOut(
            cursor=page.cursor,
            courses=page.courses,
            removed=page.removed,
            files=page.files,
            more=page.more,
        )

    @post(
        "/operations",
        status_code=200,
        opt={CONSISTENT_READ: True, **problems(WORKOUT_REQUIRED)},
    )
    async def operations(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        clock: NamedDependency[Clock],
        data: JSONBody[OperationsRequest],
    ) -> OperationsOut:
        """Apply changes a device made offline, each once, in order of ``at`` then ``id``;
        each refusal is reported with its code, the others apply."""
        operations = _operations(data)
        found = runtime(request)
        result = await sync.apply_operations(
            found.player, principal.sub, operations, clock.zone, clock.now, principal.name
        )
        for certificate in result.certificates:
            if not certificate.stored:  # after the completion committed, as online
                await certificates.keep_pdf(
                    found.player, found.certificate_files, found.render_certificate, certificate
                )
        return OperationsOut(
            applied=[
                AppliedOut(id=o.id, type=o.type, course_id=o.course_id)
                for o in result.outcomes
                if o.applied
            ],
            rejected=[
                RejectedOut(id=o.id, code=o.code or "REJECTED", detail=o.detail or "")
                for o in result.outcomes
                if not o.applied
            ],
            state=[CourseStateOut(course_id=s.course_id, state=s.state) for s in result.states],
            cursor=result.cursor,
        )

    @post("/sanity", status_code=200, opt={CONSISTENT_READ: True, **problems(TOO_MANY_COURSES)})
    async def sanity(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        data: JSONBody[SanityRequest],
    ) -> SanityOut:
        """Compare a device's course checksums with the library: what to fetch again, to
        drop, and what is missing."""
        if len(data.checksums) > MAX_SANITY_COURSES:
            raise Unprocessable(
                f"At most {MAX_SANITY_COURSES} checksums per check", code=TOO_MANY_COURSES[1]
            )
        report = await sync.sanity(
            runtime(request).player, principal.sub, data.counts.courses, data.checksums
        )
        return SanityOut(
            ok=report.ok, refetch=report.refetch, remove=report.remove, missing=report.missing
        )
