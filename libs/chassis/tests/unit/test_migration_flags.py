"""Every Alembic revision declares whether the previous revision's code keeps working on it
(``compatible_with_previous = True`` for an expand step, ``False`` for a contract step): readiness
and the migration runner of a rolled-back release depend on it, so a file without it fails."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from coursemesh.chassis.migrations import COMPATIBILITY_FLAG

REPO = Path(__file__).resolve().parents[4]
REVISION_FILES = sorted(
    [
        *REPO.glob("services/*/src/coursemesh/*/migrations/versions/*.py"),
        *REPO.glob("libs/*/src/coursemesh/**/*migrations/versions/*.py"),
    ]
)


def test_the_services_have_migrations() -> None:
    parts = [p.relative_to(REPO).parts for p in REVISION_FILES]
    services = {part[1] for part in parts if part[0] == "services"}
    assert services >= {"catalog", "commerce", "learning", "custom-gen"}


@pytest.mark.parametrize("path", REVISION_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_revision_declares_whether_the_previous_code_still_works(path: Path) -> None:
    module = ast.parse(path.read_text())
    values = [
        node.value
        for node in module.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == COMPATIBILITY_FLAG for t in node.targets)
    ]
    assert len(values) == 1, (
        f"{path.name}: set `{COMPATIBILITY_FLAG} = True` (expand: only adds what the previous "
        "release's code ignores) or `= False` (contract: drops, renames, tightens) once, at "
        "module level (docs/service-guide.md, Migrations)"
    )
    (value,) = values
    assert isinstance(value, ast.Constant), f"{path.name}: {COMPATIBILITY_FLAG} must be a literal"
    assert isinstance(value.value, bool), f"{path.name}: {COMPATIBILITY_FLAG} must be True or False"
