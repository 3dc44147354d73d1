"""What the chassis needs to know about a service."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Generic, TypeVar

import sqlalchemy as sa

from coursemesh.chassis.settings import ServiceSettings, load_settings

S = TypeVar("S", bound=ServiceSettings)


@dataclass(frozen=True)
class ServiceDefinition(Generic[S]):
    name: str  # "custom-gen": the service's name in routes, logs and the stack
    package: str  # "coursemesh.customgen"
    schema: str  # PostgreSQL schema owning every table of the service
    source: str  # event source / stream prefix ("customgen")
    env_prefix: str  # "CUSTOMGEN_"
    settings_type: type[S]
    metadata: sa.MetaData
    migrations_package: str = ""  # default: "<package>.migrations"

    @property
    def migrations_dir(self) -> Path:
        return Path(str(resources.files(self.migrations_package or f"{self.package}.migrations")))

    def load_settings(self) -> S:
        return load_settings(self.settings_type, self.env_prefix)


def package_for(service_name: str) -> str:
    return "coursemesh." + service_name.replace("-", "")


def load_definition(service_name: str) -> ServiceDefinition[ServiceSettings]:
    """Import ``coursemesh.<pkg>.service`` and return its ``SERVICE``."""
    module = importlib.import_module(package_for(service_name) + ".service")
    definition = module.SERVICE
    if not isinstance(definition, ServiceDefinition):
        raise TypeError(f"{module.__name__}.SERVICE is not a ServiceDefinition")
    return definition
