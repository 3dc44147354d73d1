"""ASGI entry point: ``uvicorn --factory coursemesh.catalog.main:create_app``."""

from __future__ import annotations

from litestar import Litestar

from coursemesh.catalog.service import SERVICE
from coursemesh.catalog.settings import Settings
from coursemesh.chassis.app import create_service_app


def create_app(settings: Settings | None = None) -> Litestar:
    return create_service_app(SERVICE, settings=settings)
