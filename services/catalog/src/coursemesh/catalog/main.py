"""ASGI entry point: ``uvicorn --factory coursemesh.catalog.main:create_app``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar

from coursemesh.catalog.app.storefront_cache import StorefrontCache, keep_fresh
from coursemesh.catalog.events.plans import on_plan_priced
from coursemesh.catalog.http.controllers import (
    CourseController,
    OrganizationController,
    WorkoutController,
)
from coursemesh.catalog.http.storefront import CACHE_KEY, public_course
from coursemesh.catalog.service import SERVICE
from coursemesh.catalog.settings import Settings
from coursemesh.chassis.app import ServiceContext, create_service_app
from coursemesh.chassis.consumer import Subscription
from coursemesh.chassis.tasks import cancel_and_wait
from coursemesh.contracts.commerce import PlanPriced

SUBSCRIPTIONS = Subscription.of({PlanPriced: on_plan_priced})


@asynccontextmanager
async def storefront_cache(ctx: ServiceContext[Any]) -> AsyncIterator[None]:
    """The storefront cache and its LISTEN connection (in every process that serves HTTP,
    whether or not it runs the workers)."""
    settings: Settings = ctx.settings
    cache = StorefrontCache(settings.storefront_cache_entries)
    ctx.extras[CACHE_KEY] = cache
    if cache.max_entries == 0:
        yield
        return
    ctx.db.on_commit(cache.clear)
    listener = asyncio.create_task(
        keep_fresh(
            cache,
            ctx.db,
            application_name=f"{SERVICE.name}:{settings.instance_id}:storefront-cache",
        ),
        name="storefront-cache-listen",
    )
    try:
        yield
    finally:
        await cancel_and_wait([listener])


def create_app(settings: Settings | None = None) -> Litestar:
    return create_service_app(
        SERVICE,
        route_handlers=[
            OrganizationController,
            WorkoutController,
            CourseController,
            public_course,
        ],
        subscriptions=SUBSCRIPTIONS,
        lifespan_hooks=[storefront_cache],
        settings=settings,
    )
