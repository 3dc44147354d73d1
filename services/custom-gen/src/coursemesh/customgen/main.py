"""ASGI entry point: ``uvicorn --factory coursemesh.customgen.main:create_app``."""

from __future__ import annotations

from typing import Any

from litestar import Litestar

from coursemesh.chassis.app import ServiceContext, create_service_app
from coursemesh.chassis.consumer import Subscription
from coursemesh.customgen.bootstrap import bootstrap, runtime
from coursemesh.customgen.events.handlers import HANDLERS
from coursemesh.customgen.http.controllers import MyCustomCourses, OrganizationCustomCourses
from coursemesh.customgen.http.files import MyCourseFiles
from coursemesh.customgen.http.handshake import handshake
from coursemesh.customgen.service import SERVICE
from coursemesh.customgen.settings import Settings

SUBSCRIPTIONS = Subscription.of(HANDLERS)


async def generation_jobs(ctx: ServiceContext[Any]) -> None:
    await runtime(ctx).runner.run_forever()


def create_app(settings: Settings | None = None) -> Litestar:
    return create_service_app(
        SERVICE,
        settings=settings,
        route_handlers=[MyCustomCourses, MyCourseFiles, handshake, OrganizationCustomCourses],
        subscriptions=SUBSCRIPTIONS,
        workers=[("generation-jobs", generation_jobs)],
        bootstrap=bootstrap,
    )
