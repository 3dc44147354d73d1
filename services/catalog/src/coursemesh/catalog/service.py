"""The catalog service's definition for the chassis."""

from __future__ import annotations

from coursemesh.catalog.adapters.tables import SCHEMA, metadata
from coursemesh.catalog.settings import Settings
from coursemesh.chassis.service import ServiceDefinition

SERVICE = ServiceDefinition(
    name="catalog",
    package="coursemesh.catalog",
    schema=SCHEMA,
    source="catalog",
    env_prefix="CATALOG_",
    settings_type=Settings,
    metadata=metadata,
)
