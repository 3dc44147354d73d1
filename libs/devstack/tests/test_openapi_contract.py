"""``docs/openapi.json``, the suite's API contract the gateway serves, is the one the four
services generate: a change to a route, a body or a response must come with the regenerated file.

Regenerate on purpose with ``uv run python -m coursemesh.devstack.openapi --write``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from coursemesh.devstack.openapi import REGENERATE, default_path, dumps, merged_document

SERVICES = ("catalog", "commerce", "learning", "custom-gen")


@pytest.fixture(scope="module")
def generated() -> dict[str, Any]:
    return merged_document()


def test_the_committed_contract_is_the_generated_one(generated: dict[str, Any]) -> None:
    path = default_path()
    assert path.exists(), f"{path} is missing; run `{REGENERATE}`"
    committed = path.read_text(encoding="utf-8")
    if committed != dumps(generated):
        old = json.loads(committed)
        changed = sorted(
            p
            for p in set(old.get("paths", {})) | set(generated["paths"])
            if old.get("paths", {}).get(p) != generated["paths"].get(p)
        )
        pytest.fail(
            f"{path} differs from what the services generate (paths changed: {changed or 'none'};"
            f" components or info may differ too); run `{REGENERATE}` and commit it"
        )


def test_the_contract_covers_every_service(generated: dict[str, Any]) -> None:
    paths = generated["paths"]
    for prefix in ("/organizations", "/courses/{course_id}/checkout", "/me/courses", "/me/custom"):
        assert any(p.startswith(prefix) for p in paths), prefix
    assert generated["components"]["schemas"]["Problem"]
    assert generated["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    # public routes stay public
    assert "security" not in paths["/public/courses/{course_id}"]["get"]
    assert "security" not in paths["/checkout/success"]["get"]
    assert paths["/me/courses"]["get"]["security"] == [{"bearer": []}]
