"""The catalog's runtime: its adapters wired to its use cases, built once per process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from litestar import Litestar, Request

from coursemesh.catalog.adapters.catalog import SqlCatalogStore
from coursemesh.catalog.adapters.storefront import SqlStorefrontStore
from coursemesh.catalog.adapters.storefront_cache import StorefrontCache, keep_fresh
from coursemesh.catalog.app.ports import CatalogStore, StorefrontStore
from coursemesh.catalog.app.storefront import Storefront
from coursemesh.catalog.settings import Settings
from coursemesh.chassis.app import ServiceContext, runtime_of
from coursemesh.chassis.db import Database
from coursemesh.chassis.tasks import cancel_and_wait


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    database: Database
    catalog: CatalogStore
    """Organizations, members, workouts and courses (the staff use cases take it)."""
    storefront_store: StorefrontStore
    """The storefront's database read (the use case's store)."""
    storefront_cache: StorefrontCache
    """The storefront's pages: the cache in front of the use case (``.source``)."""
    storefront_cache_control: bytes
    """The storefront's ``Cache-Control`` header value."""
    storefront_listener: asyncio.Task[None] | None
    """Keeps the cache's LISTEN connection (``None`` when the cache is off)."""


@asynccontextmanager
async def bootstrap(ctx: ServiceContext[Any]) -> AsyncIterator[Runtime]:
    """Every process that serves HTTP has the storefront cache and its LISTEN connection, whether
    or not it runs the workers."""
    settings = ctx.settings
    if not isinstance(settings, Settings):
        raise TypeError(f"catalog needs its own Settings, not {type(settings).__name__}")
    db = ctx.db
    storefront_store = SqlStorefrontStore(db)
    cache = StorefrontCache(Storefront(storefront_store), settings.storefront_cache_entries)
    listener: asyncio.Task[None] | None = None
    if cache.max_entries:
        db.on_commit(cache.clear)
        listener = asyncio.create_task(
            keep_fresh(
                cache,
                db,
                application_name=f"{ctx.definition.name}:{settings.instance_id}:storefront-cache",
            ),
            name="storefront-cache-listen",
        )
    max_age = settings.storefront_max_age_seconds
    try:
        yield Runtime(
            settings=settings,
            database=db,
            catalog=SqlCatalogStore(db),
            storefront_store=storefront_store,
            storefront_cache=cache,
            storefront_cache_control=f"public, max-age={max_age}".encode(),
            storefront_listener=listener,
        )
    finally:
        if listener is not None:
            await cancel_and_wait([listener])


def runtime(source: Request[Any, Any, Any] | Litestar | ServiceContext[Any]) -> Runtime:
    return runtime_of(source, Runtime)
