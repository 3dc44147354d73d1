"""ASGI entry point: ``uvicorn --factory coursemesh.commerce.main:create_app``."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from litestar import Litestar

from coursemesh.chassis.app import ServiceContext, create_service_app
from coursemesh.commerce.adapters.sandbox import WebhookSender
from coursemesh.commerce.app.access_expiry import run_access_expiry
from coursemesh.commerce.app.bulk_grants import run_bulk_grants
from coursemesh.commerce.app.sweeper import run_sweeper
from coursemesh.commerce.bootstrap import bootstrap, runtime
from coursemesh.commerce.events.catalog import SUBSCRIPTIONS
from coursemesh.commerce.http.controllers import ROUTES
from coursemesh.commerce.service import SERVICE
from coursemesh.commerce.settings import Settings


async def send_webhooks(ctx: ServiceContext[Any]) -> None:
    """The sandbox provider's delivery loop: signed webhooks, retried with backoff."""
    rt = runtime(ctx)
    s = rt.settings
    await WebhookSender(
        rt.db,
        rt.sandbox,
        rt.webhooks_wake,
        max_attempts=s.webhook_max_attempts,
        backoff_base=s.webhook_backoff_base_seconds,
        backoff_cap=s.webhook_backoff_cap_seconds,
    ).run()


async def send_receipts(ctx: ServiceContext[Any]) -> None:
    await runtime(ctx).receipt_sender.run()


async def sweep_checkouts(ctx: ServiceContext[Any]) -> None:
    rt = runtime(ctx)
    s = rt.settings
    ttl = timedelta(seconds=s.checkout_ttl_seconds)
    await run_sweeper(
        rt.sweeper, ttl, min(s.sweep_interval_seconds, s.checkout_ttl_seconds), asyncio.Event()
    )


async def end_time_limited_access(ctx: ServiceContext[Any]) -> None:
    rt = runtime(ctx)
    s = rt.settings
    await run_access_expiry(
        rt.access_expiry,
        notice=timedelta(days=s.access_expiry_notice_days),
        interval=s.access_expiry_interval_seconds,
        stop=asyncio.Event(),
    )


async def run_bulk_grant_jobs(ctx: ServiceContext[Any]) -> None:
    rt = runtime(ctx)
    await run_bulk_grants(
        rt.bulk_grants, rt.bulk_wake, rt.settings.bulk_grant_poll_seconds, asyncio.Event()
    )


def create_app(settings: Settings | None = None) -> Litestar:
    return create_service_app(
        SERVICE,
        route_handlers=ROUTES,
        subscriptions=SUBSCRIPTIONS,
        workers=[
            ("sandbox-webhook-sender", send_webhooks),
            ("receipt-sender", send_receipts),
            ("checkout-sweeper", sweep_checkouts),
            ("access-expiry", end_time_limited_access),
            ("bulk-grant-runner", run_bulk_grant_jobs),
        ],
        bootstrap=bootstrap,
        settings=settings or SERVICE.load_settings(),
    )
