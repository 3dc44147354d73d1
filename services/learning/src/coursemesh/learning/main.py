"""ASGI entry point: ``uvicorn --factory coursemesh.learning.main:create_app``."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide

from coursemesh.chassis.app import create_service_app
from coursemesh.learning.adapters.reader import CurriculumCache
from coursemesh.learning.events.projections import subscriptions
from coursemesh.learning.http.clock import Now, provide_clock, system_now
from coursemesh.learning.http.player import PlayerController, open_course
from coursemesh.learning.http.player_body import RenderedCurricula
from coursemesh.learning.http.staff import StaffController
from coursemesh.learning.service import SERVICE
from coursemesh.learning.settings import Settings


def create_app(settings: Settings | None = None, *, now: Now = system_now) -> Litestar:
    """``now`` is the clock: tests pass a fixed one to choose "today"."""
    app = create_service_app(
        SERVICE,
        route_handlers=[PlayerController, open_course, StaffController],
        subscriptions=subscriptions(),
        dependencies={
            "clock": Provide(provide_clock, sync_to_thread=False),
        },
        settings=settings,
    )
    app.state.now = now
    app.state.curricula = CurriculumCache()
    app.state.rendered_curricula = RenderedCurricula()
    return app
