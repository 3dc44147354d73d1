from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from coursemesh.devstack.services import ServiceSpec

STANDIN = Path(__file__).with_name("standin_app.py")
LIGHT_STANDIN = Path(__file__).with_name("light_standin.py")

StandinFactory = Callable[..., Callable[[ServiceSpec, int], list[str]]]


@pytest.fixture
def standin_path() -> Path:
    return STANDIN


@pytest.fixture
def standin_command() -> StandinFactory:
    """``standin_command(tag, crash={"catalog": 1.0})``: a Stack ``service_command`` running
    the stand-in Litestar app per replica (``tag`` lets a test find its processes);
    ``light=True`` runs a stdlib-only stand-in that starts in milliseconds instead."""

    def factory(
        tag: str, crash: dict[str, float] | None = None, *, light: bool = False
    ) -> Callable[[ServiceSpec, int], list[str]]:
        def build(spec: ServiceSpec, port: int) -> list[str]:
            script = LIGHT_STANDIN if light else STANDIN
            argv = [sys.executable, str(script), "--name", spec.name, "--port", str(port)]
            argv += ["--tag", tag] if light else ["--prefix", spec.env_prefix, "--tag", tag]
            if crash and spec.name in crash:
                argv += ["--crash-after", str(crash[spec.name])]
            return argv

        return build

    return factory


@pytest.fixture
def no_migrations() -> Callable[[ServiceSpec], list[str]]:
    """A Stack ``migrate_command`` that only prints (the real one lives in chassis)."""

    def build(spec: ServiceSpec) -> list[str]:
        return [sys.executable, "-c", f"print('migrated {spec.name}')"]

    return build
