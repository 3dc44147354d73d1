"""The custom-gen service's definition for the chassis."""

from __future__ import annotations

from coursemesh.chassis.service import ServiceDefinition
from coursemesh.customgen.adapters.tables import SCHEMA, metadata
from coursemesh.customgen.settings import Settings

SERVICE = ServiceDefinition(
    name="custom-gen",
    package="coursemesh.customgen",
    schema=SCHEMA,
    source="customgen",
    env_prefix="CUSTOMGEN_",
    settings_type=Settings,
    metadata=metadata,
)
