"""Every locked third-party package installs from a wheel on each supported Python and platform.

``uv sync --frozen`` on a machine whose interpreter or CPU has no wheel for a locked version
would fall back to building it from source (or fail, for a package without an sdist, such as
the wheel that carries PostgreSQL). This reads ``uv.lock`` alone, no network: it walks the
dependency graph from the workspace's members as it applies on each target (markers
evaluated) and checks that each package reached has a wheel whose tags that target accepts.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

LOCK = Path(__file__).resolve().parents[3] / "uv.lock"
PYTHONS = ((3, 11), (3, 12), (3, 13), (3, 14))
ARCHES = ("x86_64", "aarch64")
#: The oldest glibc we promise (Debian 10, Ubuntu 20.04, RHEL 8 and newer).
GLIBC_MINOR = 28
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


@dataclass(frozen=True)
class Target:
    python: tuple[int, int]
    arch: str

    @property
    def name(self) -> str:
        return f"cp{self.python[0]}{self.python[1]}-manylinux_2_{GLIBC_MINOR}_{self.arch}"

    def platforms(self) -> list[str]:
        tags = []
        for minor in range(GLIBC_MINOR, 4, -1):
            tags.append(f"manylinux_2_{minor}_{self.arch}")
            if minor in _LEGACY_MANYLINUX:
                tags.append(f"{_LEGACY_MANYLINUX[minor]}_{self.arch}")
        return tags

    def tags(self) -> set[Tag]:
        platforms = self.platforms()
        interpreter = f"cp{self.python[0]}{self.python[1]}"
        return {
            *cpython_tags(self.python, platforms=platforms),
            *compatible_tags(self.python, interpreter, platforms),
        }

    def environment(self) -> dict[str, str]:
        version = f"{self.python[0]}.{self.python[1]}"
        return {
            "python_version": version,
            "python_full_version": f"{version}.0",
            "implementation_name": "cpython",
            "implementation_version": f"{version}.0",
            "platform_python_implementation": "CPython",
            "platform_machine": self.arch,
            "platform_system": "Linux",
            "sys_platform": "linux",
            "os_name": "posix",
            "platform_release": "",
            "platform_version": "",
        }


TARGETS = [Target(python, arch) for python in PYTHONS for arch in ARCHES]


def _applies(dependency: Mapping[str, Any], environment: dict[str, str]) -> bool:
    marker = dependency.get("marker")
    return marker is None or Marker(marker).evaluate({**environment, "extra": ""})


def installed_packages(lock: Mapping[str, Any], target: Target) -> list[Mapping[str, Any]]:
    """The lock's third-party packages that ``uv sync --all-packages --all-extras`` installs
    on ``target`` (workspace members with all their extras and dev groups)."""
    packages = {package["name"]: package for package in lock["package"]}
    environment = target.environment()
    members = [p for p in packages.values() if "registry" not in p["source"]]
    reached: dict[str, set[str]] = {}  # name -> extras already followed
    todo: list[tuple[str, frozenset[str]]] = [(p["name"], frozenset()) for p in members]
    while todo:
        name, extras = todo.pop()
        package = packages[name]
        if name in reached and extras <= reached[name]:
            continue
        reached.setdefault(name, set()).update(extras)
        edges: list[Mapping[str, Any]] = list(package.get("dependencies", []))
        optional: Mapping[str, list[Mapping[str, Any]]] = package.get("optional-dependencies", {})
        groups: Mapping[str, list[Mapping[str, Any]]] = package.get("dev-dependencies", {})
        if "registry" not in package["source"]:
            edges += [d for ds in (*optional.values(), *groups.values()) for d in ds]
        else:
            edges += [d for extra in extras for d in optional.get(extra, [])]
        todo += [
            (d["name"], frozenset(d.get("extra", []))) for d in edges if _applies(d, environment)
        ]
    return [packages[n] for n in sorted(reached) if "registry" in packages[n]["source"]]


def _wheel_tags(urls: Iterable[str]) -> set[Tag]:
    tags: set[Tag] = set()
    for url in urls:
        tags |= set(parse_wheel_filename(url.rsplit("/", 1)[-1])[3])
    return tags


def without_wheel(lock: Mapping[str, Any], target: Target) -> list[str]:
    """``name==version`` of each package ``target`` would have to build from source."""
    accepted = target.tags()
    return [
        f"{package['name']}=={package['version']}"
        for package in installed_packages(lock, target)
        if not _wheel_tags(w["url"] for w in package.get("wheels", [])) & accepted
    ]


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_every_locked_package_has_a_wheel_for(target: Target) -> None:
    with LOCK.open("rb") as handle:
        lock = tomllib.load(handle)
    assert len(installed_packages(lock, target)) > 50  # the walk reached the real graph
    assert without_wheel(lock, target) == []


def _registry(name: str, wheels: list[str], deps: list[dict[str, str]] | None = None) -> Any:
    return {
        "name": name,
        "version": "1.0",
        "source": {"registry": "https://pypi.org/simple"},
        "dependencies": deps or [],
        "wheels": [{"url": f"https://files.example/{w}"} for w in wheels],
    }


def test_the_check_names_a_package_built_for_other_pythons_or_cpus_only() -> None:
    lock = {
        "package": [
            {
                "name": "member",
                "version": "0.1.0",
                "source": {"editable": "libs/member"},
                "dependencies": [
                    {"name": "pure"},
                    {"name": "old-x86"},
                    {"name": "abi3"},
                    {"name": "new-glibc"},
                    {"name": "windows-only", "marker": "sys_platform == 'win32'"},
                ],
            },
            _registry("pure", ["pure-1.0-py3-none-any.whl"]),
            _registry(
                "old-x86",
                ["old_x86-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"],
            ),
            _registry(
                "abi3",
                [
                    "abi3-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                    "abi3-1.0-cp39-abi3-manylinux_2_28_aarch64.whl",
                ],
            ),
            _registry("new-glibc", ["new_glibc-1.0-py3-none-manylinux_2_34_x86_64.whl"]),
            _registry("windows-only", []),
        ]
    }
    assert without_wheel(lock, Target((3, 11), "x86_64")) == ["new-glibc==1.0"]
    assert without_wheel(lock, Target((3, 13), "x86_64")) == ["new-glibc==1.0", "old-x86==1.0"]
    assert without_wheel(lock, Target((3, 11), "aarch64")) == ["new-glibc==1.0", "old-x86==1.0"]
