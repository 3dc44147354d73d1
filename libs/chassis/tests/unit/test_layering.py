"""The layering every service keeps is enforced by ``make lint`` (import-linter, configured in
the workspace's pyproject.toml): these tests run the same check on a copy of a service with one
forbidden import added, and see it refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
SERVICES = {
    path.name: path
    for path in sorted(ROOT.glob("services/*/src/coursemesh/*"))
    if (path / "app").is_dir()
}
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(shadow: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` as ``make lint`` runs it, with the packages under ``shadow`` found
    before the workspace's own."""
    env = dict(os.environ)
    if shadow is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shadow), env.get("PYTHONPATH")]))
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def with_line_added(tmp_path: Path, package: str, module: str, line: str) -> Path:
    """A copy of one service's package whose ``module`` (a path inside it) starts with
    ``line``."""
    copy = tmp_path / "coursemesh" / package
    shutil.copytree(SERVICES[package], copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(f"{target.read_text()}\n{line}\n")
    return tmp_path


def app_modules(package: str) -> list[str]:
    app = SERVICES[package] / "app"
    return sorted(str(p.relative_to(SERVICES[package])) for p in app.glob("*.py"))


def test_the_workspace_keeps_its_layering() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("package", "module"),
    [(package, module) for package in SERVICES for module in app_modules(package)],
)
def test_sqlalchemy_in_a_use_case_module_fails_the_lint(
    tmp_path: Path, package: str, module: str
) -> None:
    shadow = with_line_added(tmp_path, package, module, "import sqlalchemy  # noqa")
    result = lint_imports(shadow)
    assert result.returncode != 0
    dotted = f"coursemesh.{package}.{module.removesuffix('.py').replace('/', '.')}"
    dotted = dotted.removesuffix(".__init__")
    assert f"{dotted} -> sqlalchemy" in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    ("package", "module", "line", "shown"),
    [
        (
            "commerce",
            "domain/pricing.py",
            "import litestar  # noqa",
            "coursemesh.commerce.domain.pricing -> litestar",
        ),
        (
            "commerce",
            "app/__init__.py",
            "import coursemesh.commerce.adapters.tables  # noqa",
            "coursemesh.commerce.app -> coursemesh.commerce.adapters.tables",
        ),
        (
            "learning",
            "domain/player.py",
            "import coursemesh.learning.app  # noqa",
            "coursemesh.learning.domain.player -> coursemesh.learning.app",
        ),
        (
            "catalog",
            "adapters/__init__.py",
            "import coursemesh.catalog.http  # noqa",
            "coursemesh.catalog.adapters -> coursemesh.catalog.http",
        ),
        (
            "customgen",
            "app/__init__.py",
            "import coursemesh.catalog  # noqa",
            "coursemesh.customgen.app -> coursemesh.catalog",
        ),
    ],
)
def test_other_forbidden_imports_fail_the_lint(
    tmp_path: Path, package: str, module: str, line: str, shown: str
) -> None:
    result = lint_imports(with_line_added(tmp_path, package, module, line))
    assert result.returncode != 0
    assert shown in " ".join(result.stdout.split())
