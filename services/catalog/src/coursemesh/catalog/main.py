"""ASGI entry point: ``uvicorn --factory coursemesh.catalog.main:create_app``."""

from __future__ import annotations

from litestar import Litestar

from coursemesh.catalog.bootstrap import bootstrap
from coursemesh.catalog.events.plans import on_plan_priced
from coursemesh.catalog.http.controllers import (
    CourseController,
    OrganizationController,
    WorkoutController,
)
from coursemesh.catalog.http.storefront import public_course
from coursemesh.catalog.service import SERVICE
from coursemesh.catalog.settings import Settings
from coursemesh.chassis.app import create_service_app
from coursemesh.chassis.consumer import Subscription
from coursemesh.contracts.commerce import PlanPriced

SUBSCRIPTIONS = Subscription.of({PlanPriced: on_plan_priced})


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
        bootstrap=bootstrap,
        settings=settings,
    )
