"""``/health/live`` (the process answers) and ``/health/ready`` (it can do its job)."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, MediaType, Request, Response, get

from coursemesh.chassis.errors import PROBLEM_JSON
from coursemesh.chassis.migrations import (
    RevisionRecord,
    assess_schema,
    code_revisions,
    current_revision,
    recorded_revisions,
)


class HealthController(Controller):
    path = "/health"
    include_in_schema = False

    @get("/live", media_type=MediaType.JSON)
    async def live(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", media_type=MediaType.JSON)
    async def ready(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        ctx = getattr(request.app.state, "ctx", None)
        checks: dict[str, str] = {}
        if ctx is None:
            checks["startup"] = "not started"
        else:
            checks["database"] = await _check_database(ctx)
            checks["nats"] = "ok" if ctx.bus.connected else "disconnected"
        ok = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = {
            "status": "ok" if ok else "unavailable",
            "service": request.app.state.definition.name,
            "checks": checks,
        }
        if ok:
            return Response(body, status_code=200, media_type=MediaType.JSON)
        body.update(type="about:blank", title="Service Unavailable", code="NOT_READY", status=503)
        return Response(body, status_code=503, media_type=PROBLEM_JSON)


async def _check_database(ctx: Any) -> str:
    """ "ok" when the schema is at this code's head, or ahead of it through revisions recorded
    as compatible with the previous code (expand migrations of a newer release); else why not."""
    head = ctx.head_revision
    known = code_revisions(ctx.definition)
    recorded: dict[str, RevisionRecord] | None = None
    try:
        async with asyncio.timeout(2.0), ctx.db.engine.connect() as conn:
            revision = await current_revision(conn, ctx.db.schema)
            if revision is not None and revision != head and revision not in known:
                recorded = await recorded_revisions(conn, ctx.db.schema)
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
    verdict = assess_schema(revision, head, known, recorded)
    return "ok" if verdict.ok else verdict.message
