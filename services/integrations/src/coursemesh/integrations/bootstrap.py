"""What the integrations service's handlers and its sender share, built once at start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Litestar, Request

from coursemesh.chassis.app import ServiceContext, runtime_of
from coursemesh.integrations.adapters.network import HttpxSender, SystemResolver
from coursemesh.integrations.adapters.store_sql import SqlDeliveryQueue, SqlEndpointStorage
from coursemesh.integrations.app.endpoints import Endpoints, Policy
from coursemesh.integrations.app.ports import Resolver
from coursemesh.integrations.app.sending import DeliverySender, SenderPolicy
from coursemesh.integrations.settings import Settings


def system_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    endpoints: Endpoints
    sender: DeliverySender


@asynccontextmanager
async def bootstrap(
    ctx: ServiceContext[Any], *, resolver: Resolver | None = None
) -> AsyncIterator[Runtime]:
    """``resolver``: DNS (a test passes one that answers what it wants)."""
    settings: Settings = ctx.settings
    dns = resolver or SystemResolver()
    http = HttpxSender()
    sender = DeliverySender(
        SqlDeliveryQueue(ctx.db),
        dns,
        http,
        SenderPolicy(
            allow_loopback=settings.allow_loopback_endpoints,
            retry_scale=settings.retry_scale,
            timeout=settings.send_timeout_seconds,
            concurrency=settings.send_concurrency,
            lease_seconds=settings.lease_seconds,
            poll_interval=settings.poll_interval_seconds,
            retention=timedelta(days=settings.delivery_retention_days),
        ),
        system_now,
    )
    policy = Policy(
        allow_loopback=settings.allow_loopback_endpoints,
        secret_grace=timedelta(seconds=settings.secret_grace_seconds),
    )
    try:
        yield Runtime(settings, Endpoints(SqlEndpointStorage(ctx.db), dns, policy), sender)
    finally:
        await http.close()


def runtime(source: Request[Any, Any, Any] | Litestar | ServiceContext[Any]) -> Runtime:
    return runtime_of(source, Runtime)
