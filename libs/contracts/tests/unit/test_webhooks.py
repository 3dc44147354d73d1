"""The public webhook events' documented schemas are the ones the code sends."""

from __future__ import annotations

from pathlib import Path

from coursemesh.contracts.webhooks import EVENT_TYPES, document, examples, schemas

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


def test_every_type_has_an_example_that_its_schema_accepts() -> None:
    import msgspec

    from coursemesh.contracts.webhooks import TEST_EVENT_TYPE, TestData

    shown = examples()
    assert set(shown) == {*EVENT_TYPES, TEST_EVENT_TYPE}
    for kind, body in shown.items():
        assert body["type"] == kind
        shape = EVENT_TYPES.get(kind, TestData)
        msgspec.convert(body["data"], shape, strict=False)  # raises when it does not fit
