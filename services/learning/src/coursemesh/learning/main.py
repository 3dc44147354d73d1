"""ASGI entry point: ``uvicorn --factory coursemesh.learning.main:create_app``."""

from __future__ import annotations

from litestar import Litestar

from coursemesh.chassis.app import create_service_app
from coursemesh.learning.service import SERVICE
from coursemesh.learning.settings import Settings


def create_app(settings: Settings | None = None) -> Litestar:
    return create_service_app(SERVICE, settings=settings)
