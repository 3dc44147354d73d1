"""Configuration of the catalog service: ``CATALOG_*`` environment variables."""

from __future__ import annotations

from coursemesh.chassis.settings import ServiceSettings


class Settings(ServiceSettings, kw_only=True, frozen=True):
    pass
