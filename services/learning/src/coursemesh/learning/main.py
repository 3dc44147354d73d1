"""ASGI entry point: ``uvicorn --factory coursemesh.learning.main:create_app``."""

from __future__ import annotations

import functools
from typing import Any

from litestar import Litestar
from litestar.di import Provide

from coursemesh.chassis.app import ServiceContext, create_service_app
from coursemesh.learning.adapters.reminders import ReminderWorker
from coursemesh.learning.app.ports import Now
from coursemesh.learning.bootstrap import bootstrap, runtime, system_now
from coursemesh.learning.events.projections import subscriptions
from coursemesh.learning.http.certificates import CERTIFICATE_ROUTES
from coursemesh.learning.http.clock import provide_clock
from coursemesh.learning.http.pauses import PauseController, StaffPauseController
from coursemesh.learning.http.player import PlayerController, open_course
from coursemesh.learning.http.reminders import ReminderController, UnsubscribeController
from coursemesh.learning.http.staff import StaffController
from coursemesh.learning.http.summary import SummaryController
from coursemesh.learning.http.sync import SyncController
from coursemesh.learning.service import SERVICE
from coursemesh.learning.settings import Settings


async def send_reminders(ctx: ServiceContext[Any]) -> None:
    """Queue the reminder e-mails that came due and send the queue; nothing without the key
    that signs their unsubscribe links."""
    rt = runtime(ctx)
    worker = ReminderWorker.from_settings(rt.settings, rt.database)
    if worker is not None:
        await worker.run(rt.clock, rt.settings.reminder_interval_seconds)


def create_app(settings: Settings | None = None, *, now: Now = system_now) -> Litestar:
    """``now`` is the clock the bootstrap hands the runtime: tests pass a fixed one to choose
    "today"."""
    return create_service_app(
        SERVICE,
        route_handlers=[
            PlayerController,
            open_course,
            StaffController,
            SummaryController,
            ReminderController,
            UnsubscribeController,
            *CERTIFICATE_ROUTES,
            PauseController,
            StaffPauseController,
            SyncController,
        ],
        workers=[("reminder-sender", send_reminders)],
        subscriptions=subscriptions(),
        bootstrap=functools.partial(bootstrap, now=now),
        dependencies={"clock": Provide(provide_clock, sync_to_thread=False)},
        settings=settings,
    )
