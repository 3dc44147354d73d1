"""ASGI entry point: ``uvicorn --factory coursemesh.learning.main:create_app``."""

from __future__ import annotations

import functools

from litestar import Litestar
from litestar.di import Provide

from coursemesh.chassis.app import create_service_app
from coursemesh.learning.app.ports import Now
from coursemesh.learning.bootstrap import bootstrap, system_now
from coursemesh.learning.events.projections import subscriptions
from coursemesh.learning.http.clock import provide_clock
from coursemesh.learning.http.pauses import PauseController, StaffPauseController
from coursemesh.learning.http.player import PlayerController, open_course
from coursemesh.learning.http.staff import StaffController
from coursemesh.learning.service import SERVICE
from coursemesh.learning.settings import Settings


def create_app(settings: Settings | None = None, *, now: Now = system_now) -> Litestar:
    """``now`` is the clock the bootstrap hands the runtime: tests pass a fixed one to choose
    "today"."""
    return create_service_app(
        SERVICE,
        route_handlers=[
            PlayerController,
            open_course,
            StaffController,
            PauseController,
            StaffPauseController,
        ],
        subscriptions=subscriptions(),
        bootstrap=functools.partial(bootstrap, now=now),
        dependencies={"clock": Provide(provide_clock, sync_to_thread=False)},
        settings=settings,
    )
