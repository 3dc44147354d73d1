"""ASGI entry point: ``uvicorn --factory coursemesh.integrations.main:create_app``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

from litestar import Litestar

from coursemesh.chassis.app import ServiceContext, create_service_app
from coursemesh.chassis.db import asyncpg_dsn
from coursemesh.chassis.notify import listen_forever
from coursemesh.chassis.tasks import cancel_and_wait
from coursemesh.integrations.adapters.store_sql import CHANNEL
from coursemesh.integrations.app.ports import Resolver
from coursemesh.integrations.bootstrap import bootstrap, runtime
from coursemesh.integrations.events.handlers import subscriptions
from coursemesh.integrations.http.controllers import WebhookEndpoints
from coursemesh.integrations.service import SERVICE
from coursemesh.integrations.settings import Settings


async def webhook_sender(ctx: ServiceContext[Any]) -> None:
    """Sends due deliveries; woken by the NOTIFY of each transaction that adds some (and when
    the LISTEN connection comes back, since notifications sent meanwhile are lost)."""
    sender = runtime(ctx).sender
    listener = asyncio.create_task(
        listen_forever(
            asyncpg_dsn(ctx.settings.database_url),
            CHANNEL,
            lambda _payload: sender.wake(),
            name="webhook-sender",
            on_connected=sender.wake,
            application_name=f"{SERVICE.name}-sender",
        )
    )
    try:
        await sender.run_forever()
    finally:
        with contextlib.suppress(Exception):
            await cancel_and_wait([listener])


def create_app(settings: Settings | None = None, *, resolver: Resolver | None = None) -> Litestar:
    """``resolver``: DNS for registration and sending (the system's unless a test passes one)."""
    return create_service_app(
        SERVICE,
        settings=settings,
        route_handlers=[WebhookEndpoints],
        subscriptions=subscriptions(),
        workers=[("webhook-sender", webhook_sender)],
        bootstrap=functools.partial(bootstrap, resolver=resolver),
    )
