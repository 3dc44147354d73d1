"""ASGI entry point: ``uvicorn --factory coursemesh.customgen.main:create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar

from coursemesh.chassis.app import ServiceContext, create_service_app
from coursemesh.chassis.consumer import Subscription
from coursemesh.customgen.adapters.runtime import (
    Adapters,
    Runtime,
    build_adapters,
    build_runner,
)
from coursemesh.customgen.adapters.s3 import S3AudioStore
from coursemesh.customgen.events.handlers import HANDLERS
from coursemesh.customgen.http.controllers import MyCustomCourses, OrganizationCustomCourses
from coursemesh.customgen.http.handshake import handshake
from coursemesh.customgen.service import SERVICE
from coursemesh.customgen.settings import Settings

SUBSCRIPTIONS = Subscription.of(HANDLERS)


def create_app(settings: Settings | None = None, *, adapters: Adapters | None = None) -> Litestar:
    """``adapters`` replaces the ones the settings name (tests inject failing ones)."""

    @asynccontextmanager
    async def runtime(ctx: ServiceContext[Any]) -> AsyncIterator[None]:
        chosen = adapters or build_adapters(ctx.settings)
        if isinstance(chosen.store, S3AudioStore):
            await chosen.store.ensure_bucket()
        ctx.extras["runtime"] = Runtime(
            settings=ctx.settings,
            adapters=chosen,
            runner=build_runner(ctx.db, ctx.settings, chosen),
        )
        yield

    async def generation_jobs(ctx: ServiceContext[Any]) -> None:
        runtime: Runtime = ctx.extras["runtime"]
        await runtime.runner.run_forever()

    return create_service_app(
        SERVICE,
        settings=settings,
        route_handlers=[MyCustomCourses, handshake, OrganizationCustomCourses],
        subscriptions=SUBSCRIPTIONS,
        workers=[("generation-jobs", generation_jobs)],
        lifespan_hooks=[runtime],
    )
