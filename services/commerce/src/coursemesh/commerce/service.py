"""The commerce service's definition for the chassis."""

from __future__ import annotations

from coursemesh.chassis.service import ServiceDefinition
from coursemesh.commerce.adapters.tables import SCHEMA, metadata
from coursemesh.commerce.settings import Settings

SERVICE = ServiceDefinition(
    name="commerce",
    package="coursemesh.commerce",
    schema=SCHEMA,
    source="commerce",
    env_prefix="COMMERCE_",
    settings_type=Settings,
    metadata=metadata,
)
