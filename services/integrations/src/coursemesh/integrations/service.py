"""The integrations service's definition for the chassis."""

from __future__ import annotations

from coursemesh.chassis.service import ServiceDefinition
from coursemesh.integrations.adapters.tables import SCHEMA, metadata
from coursemesh.integrations.settings import Settings

SERVICE = ServiceDefinition(
    name="integrations",
    package="coursemesh.integrations",
    schema=SCHEMA,
    source="integrations",
    env_prefix="INTEGRATIONS_",
    settings_type=Settings,
    metadata=metadata,
)
