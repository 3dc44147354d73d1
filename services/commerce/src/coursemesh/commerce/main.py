"""ASGI entry point: ``uvicorn --factory coursemesh.commerce.main:create_app``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from litestar import Litestar
from litestar.di import Provide

from coursemesh.chassis.app import ServiceContext, create_service_app
from coursemesh.commerce.adapters.mailer import ReceiptSender
from coursemesh.commerce.adapters.sandbox import WebhookSender
from coursemesh.commerce.app.sweeper import run_sweeper
from coursemesh.commerce.events.catalog import SUBSCRIPTIONS
from coursemesh.commerce.http.controllers import ROUTES
from coursemesh.commerce.http.runtime import Runtime, provide_runtime
from coursemesh.commerce.service import SERVICE
from coursemesh.commerce.settings import Settings


def _runtime(ctx: ServiceContext[Any]) -> Runtime:
    runtime: Runtime = ctx.extras["commerce"]
    return runtime


async def send_webhooks(ctx: ServiceContext[Any]) -> None:
    """The sandbox provider's delivery loop: signed webhooks, retried with backoff."""
    runtime = _runtime(ctx)
    s = runtime.settings
    await WebhookSender(
        ctx.db,
        runtime.sandbox,
        runtime.webhooks_wake,
        max_attempts=s.webhook_max_attempts,
        backoff_base=s.webhook_backoff_base_seconds,
        backoff_cap=s.webhook_backoff_cap_seconds,
    ).run()


async def send_receipts(ctx: ServiceContext[Any]) -> None:
    runtime = _runtime(ctx)
    s = runtime.settings
    await ReceiptSender(
        ctx.db, s.smtp_host, s.smtp_port, s.mail_from, runtime.receipts_wake, s.receipt_max_attempts
    ).run()


async def sweep_checkouts(ctx: ServiceContext[Any]) -> None:
    s = _runtime(ctx).settings
    ttl = timedelta(seconds=s.checkout_ttl_seconds)
    await run_sweeper(
        ctx.db, ttl, min(s.sweep_interval_seconds, s.checkout_ttl_seconds), asyncio.Event()
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or SERVICE.load_settings()
    runtime = Runtime.from_settings(settings)

    @asynccontextmanager
    async def share_runtime(ctx: ServiceContext[Any]) -> AsyncIterator[None]:
        ctx.extras["commerce"] = runtime
        yield

    app = create_service_app(
        SERVICE,
        route_handlers=ROUTES,
        subscriptions=SUBSCRIPTIONS,
        workers=[
            ("sandbox-webhook-sender", send_webhooks),
            ("receipt-sender", send_receipts),
            ("checkout-sweeper", sweep_checkouts),
        ],
        lifespan_hooks=[share_runtime],
        dependencies={"runtime": Provide(provide_runtime, sync_to_thread=False)},
        settings=settings,
    )
    app.state.commerce = runtime
    return app
