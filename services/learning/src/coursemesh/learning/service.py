"""The learning service's definition for the chassis."""

from __future__ import annotations

from coursemesh.chassis.service import ServiceDefinition
from coursemesh.learning.adapters.tables import SCHEMA, metadata
from coursemesh.learning.settings import Settings

SERVICE = ServiceDefinition(
    name="learning",
    package="coursemesh.learning",
    schema=SCHEMA,
    source="learning",
    env_prefix="LEARNING_",
    settings_type=Settings,
    metadata=metadata,
)
