"""The public webhook events' documented schemas are the ones the code sends."""

from __future__ import annotations

from pathlib import Path

from coursemesh.contracts.webhooks import EVENT_TYPES, document, schemas

DOCUMENT = Path(__file__).resolve().parents[4] / "docs" / "webhook-events.json"


def test_the_committed_schemas_are_current() -> None:
    assert DOCUMENT.read_text() == document(), (
        "regenerate: uv run python -m coursemesh.contracts.webhooks --write"
    )


def test_every_type_is_documented_with_camel_case_fields() -> None:
    found = schemas()
    assert set(found["types"]) == {*EVENT_TYPES, "webhook.test"}
    for component in found["components"].values():
        for name in component.get("properties", {}):
            assert "_" not in name, name
