"""ASGI entry point: ``uvicorn --factory coursemesh.customgen.main:create_app``."""

from __future__ import annotations

from litestar import Litestar

from coursemesh.chassis.app import create_service_app
from coursemesh.customgen.service import SERVICE
from coursemesh.customgen.settings import Settings


def create_app(settings: Settings | None = None) -> Litestar:
    return create_service_app(SERVICE, settings=settings)
