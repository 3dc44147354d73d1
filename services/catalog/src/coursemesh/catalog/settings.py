"""Configuration of the catalog service: ``CATALOG_*`` environment variables."""

from __future__ import annotations

from typing import Annotated

import msgspec

from coursemesh.chassis.settings import ServiceSettings


class Settings(ServiceSettings, kw_only=True, frozen=True):
    storefront_max_age_seconds: Annotated[int, msgspec.Meta(ge=0)] = 30
    """``CATALOG_STOREFRONT_MAX_AGE_SECONDS``: how long clients and CDNs may reuse a storefront
    response without revalidating (they revalidate cheaply with If-None-Match -> 304)."""
    storefront_cache_entries: Annotated[int, msgspec.Meta(ge=0)] = 10_000
    """``CATALOG_STOREFRONT_CACHE_ENTRIES``: how many storefront answers (200s only) each process
    keeps in memory, least recently used dropped first; 0 turns the cache off."""
