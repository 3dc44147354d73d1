"""Configuration of the catalog service: ``CATALOG_*`` environment variables."""

from __future__ import annotations

from typing import Annotated

import msgspec

from coursemesh.chassis.settings import ServiceSettings


class Settings(ServiceSettings, kw_only=True, frozen=True):
    storefront_max_age_seconds: Annotated[int, msgspec.Meta(ge=0)] = 30
    """``CATALOG_STOREFRONT_MAX_AGE_SECONDS``: how long clients and CDNs may reuse a storefront
    response without revalidating (they revalidate cheaply with If-None-Match -> 304)."""
