"""Shared by the deploy tests: the services' settings, read from their code.

Valid variable names are never listed here: they come from each service's settings Struct
(``msgspec.structs.fields``) and ``env_prefix``, through ``coursemesh.<pkg>.service.SERVICE``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest

from coursemesh.chassis.service import ServiceDefinition, load_definition
from coursemesh.chassis.settings import SettingsError, load_settings
from coursemesh.devstack.services import SERVICES, ServiceSpec

REPO = Path(__file__).resolve().parents[2]

CheckEnv = Callable[[str, Mapping[str, str]], None]


def definition(name: str) -> ServiceDefinition[Any]:
    return load_definition(name)


def valid_names(defn: ServiceDefinition[Any]) -> set[str]:
    """Every variable the service reads: ``<PREFIX><FIELD>``."""
    return {
        f"{defn.env_prefix}{f.name.upper()}" for f in msgspec.structs.fields(defn.settings_type)
    }


def required_names(defn: ServiceDefinition[Any]) -> set[str]:
    return {
        f"{defn.env_prefix}{f.name.upper()}"
        for f in msgspec.structs.fields(defn.settings_type)
        if f.required
    }


def check_service_env(service: str, env: Mapping[str, str]) -> None:
    """``env`` holds only settings of ``service``, every required one, and loads cleanly
    (types, choices and cross-field rules such as "stripe needs its keys")."""
    defn = definition(service)
    unknown = sorted(set(env) - valid_names(defn))
    assert not unknown, f"{service}: not settings of the service: {unknown}"
    missing = sorted(required_names(defn) - set(env))
    assert not missing, f"{service}: required settings missing: {missing}"
    try:
        load_settings(defn.settings_type, defn.env_prefix, env)
    except SettingsError as exc:  # pragma: no cover - the assertion message is the point
        pytest.fail(f"{service}: settings do not load: {exc}")


@pytest.fixture(scope="session")
def specs() -> tuple[ServiceSpec, ...]:
    """The suite's services (name, package, env prefix), as the development stack runs them."""
    return SERVICES


@pytest.fixture(scope="session")
def check_env() -> CheckEnv:
    return check_service_env


@pytest.fixture(scope="session")
def settings_names() -> Callable[[str], set[str]]:
    return lambda service: valid_names(definition(service))


@pytest.fixture(scope="session")
def caddy_placeholders() -> dict[str, str | None]:
    """``{$NAME}`` / ``{$NAME:default}`` environment placeholders of the gateway's Caddyfile."""
    text = (REPO / "deploy/gateway/Caddyfile").read_text()
    found: dict[str, str | None] = {}
    for name, default in re.findall(r"\{\$([A-Z0-9_]+)(?::([^}]*))?\}", text):
        found[name] = default or found.get(name)
    return found
