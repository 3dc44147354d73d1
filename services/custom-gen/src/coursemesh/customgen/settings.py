"""Configuration of the custom-gen service: ``CUSTOMGEN_*`` environment variables."""

from __future__ import annotations

from coursemesh.chassis.settings import ServiceSettings


class Settings(ServiceSettings, kw_only=True, frozen=True):
    pass
