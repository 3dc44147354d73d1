"""Unit tests of the pure compatibility checker: each incompatible change is caught, each
compatible one accepted. Schemas come from real msgspec Structs, as in the snapshot."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
import pytest

from coursemesh.contracts.compat import check_compatibility, check_snapshot

UtcDateTime = Annotated[datetime, msgspec.Meta(tz=True)]


def schema(tp: Any) -> dict[str, Any]:
    return msgspec.json.schema(tp)


# The baseline, and variations of it. Each class is named V so only the structure differs.
class Item(msgspec.Struct, frozen=True, kw_only=True):
    item_id: uuid.UUID
    position: int


class Base(msgspec.Struct, frozen=True, kw_only=True):
    """Baseline."""

    course_id: uuid.UUID
    name: str
    price_in_cents: Annotated[int, msgspec.Meta(ge=0)]
    status: Literal["draft", "published"]
    archived_at: UtcDateTime | None
    items: list[Item]
    note: str = ""


BASE = schema(Base)


def variant(rename: Literal["camel"] | None = None, **fields: Any) -> dict[str, Any]:
    """The schema of Base with fields replaced (value = type, or (type, default)); None drops."""
    spec: list[Any] = []
    names = dict.fromkeys(Base.__struct_fields__)
    annotations = {
        "course_id": uuid.UUID,
        "name": str,
        "price_in_cents": Annotated[int, msgspec.Meta(ge=0)],
        "status": Literal["draft", "published"],
        "archived_at": UtcDateTime | None,
        "items": list[Item],
        "note": (str, ""),
    }
    annotations.update(fields)
    for name in [*names, *(k for k in fields if k not in names)]:
        value = annotations[name]
        if value is None:
            continue
        if isinstance(value, tuple):
            spec.append((name, value[0], value[1]))
        else:
            spec.append((name, value))
    cls = msgspec.defstruct("Base", spec, kw_only=True, frozen=True, rename=rename)
    return schema(cls)


def test_identical_schema_is_compatible() -> None:
    assert check_compatibility(BASE, schema(Base)) == []


def test_baseline_rebuilt_by_variant_is_identical() -> None:
    # guards the helper: without changes it must reproduce the baseline's structure
    assert check_compatibility(BASE, variant()) == []


# --- incompatible ---------------------------------------------------------------------------


def test_removed_field_is_incompatible() -> None:
    problems = check_compatibility(BASE, variant(name=None))
    assert problems == ["$.name: field removed (or renamed)"]


def test_removed_optional_field_is_incompatible() -> None:
    assert check_compatibility(BASE, variant(note=None)) == ["$.note: field removed (or renamed)"]


def test_renamed_field_is_incompatible() -> None:
    problems = check_compatibility(BASE, variant(name=None, title=str))
    assert "$.name: field removed (or renamed)" in problems
    assert "$.title: new required field" in problems


def test_renamed_by_encoding_is_incompatible() -> None:
    problems = check_compatibility(BASE, variant(rename="camel"))
    assert "$.course_id: field removed (or renamed)" in problems


@pytest.mark.parametrize(
    ("field", "new_type"),
    [
        pytest.param("name", int, id="str->int"),
        pytest.param("course_id", str, id="uuid->str (format dropped)"),
        pytest.param("price_in_cents", float, id="int->float"),
        pytest.param("price_in_cents", int, id="constraint dropped"),
        pytest.param("price_in_cents", Annotated[int, msgspec.Meta(ge=1)], id="constraint changed"),
        pytest.param("name", Annotated[str, msgspec.Meta(max_length=5)], id="constraint added"),
        pytest.param("name", str | None, id="became nullable"),
        pytest.param("archived_at", UtcDateTime, id="no longer nullable"),
        pytest.param("archived_at", str | None, id="datetime->str"),
        pytest.param("archived_at", datetime | None, id="tz-aware->naive datetime"),
        pytest.param("status", Literal["draft", "published", "archived"], id="enum value added"),
        pytest.param("status", Literal["draft"], id="enum value removed"),
        pytest.param("status", str, id="enum->str"),
        pytest.param("items", list[uuid.UUID], id="list item type"),
        pytest.param("items", Item, id="list->object"),
        pytest.param("items", list[Item] | None, id="list became nullable"),
    ],
)
def test_retyped_field_is_incompatible(field: str, new_type: Any) -> None:
    problems = check_compatibility(BASE, variant(**{field: new_type}))
    assert problems, f"retyping {field} to {new_type} was not caught"
    assert all(p.startswith(f"$.{field}") for p in problems), problems


def test_retyped_nested_field_is_incompatible() -> None:
    class Item2(msgspec.Struct, frozen=True, kw_only=True):
        item_id: uuid.UUID
        position: str

    problems = check_compatibility(BASE, variant(items=list[Item2]))
    assert problems == ["$.items[].position: type changed ('integer' -> 'string')"]


def test_removed_nested_field_is_incompatible() -> None:
    class Item2(msgspec.Struct, frozen=True, kw_only=True):
        item_id: uuid.UUID

    assert check_compatibility(BASE, variant(items=list[Item2])) == [
        "$.items[].position: field removed (or renamed)"
    ]


def test_new_required_field_is_incompatible() -> None:
    assert check_compatibility(BASE, variant(currency=str)) == ["$.currency: new required field"]


def test_new_required_nested_field_is_incompatible() -> None:
    class Item2(msgspec.Struct, frozen=True, kw_only=True):
        item_id: uuid.UUID
        position: int
        day: int

    assert check_compatibility(BASE, variant(items=list[Item2])) == [
        "$.items[].day: new required field"
    ]


def test_required_field_becoming_optional_is_incompatible() -> None:
    problems = check_compatibility(BASE, variant(name=(str, "x")))
    assert problems == ["$.name: required field became optional"]


def test_optional_field_becoming_required_is_incompatible() -> None:
    problems = check_compatibility(BASE, variant(note=str))
    assert problems == ["$.note: optional field became required"]


def test_closing_an_object_to_unknown_fields_is_incompatible() -> None:
    class Closed(Base, forbid_unknown_fields=True, frozen=True, kw_only=True):
        pass

    assert check_compatibility(BASE, schema(Closed)) == ["$: object now forbids unknown fields"]


def test_new_optional_field_on_closed_object_is_incompatible() -> None:
    class Closed(Base, forbid_unknown_fields=True, frozen=True, kw_only=True):
        pass

    class ClosedPlus(Closed, forbid_unknown_fields=True, frozen=True, kw_only=True):
        extra: int = 0

    assert check_compatibility(schema(Closed), schema(ClosedPlus)) == [
        "$.extra: new field on an object that forbids unknown fields"
    ]


def test_object_replaced_by_scalar_is_incompatible() -> None:
    assert check_compatibility(BASE, schema(str)) != []


# --- compatible -----------------------------------------------------------------------------


def test_new_optional_field_is_compatible() -> None:
    assert check_compatibility(BASE, variant(currency=(str | None, None))) == []


def test_new_optional_nested_field_is_compatible() -> None:
    class Item2(msgspec.Struct, frozen=True, kw_only=True):
        item_id: uuid.UUID
        position: int
        label: str = ""

    assert check_compatibility(BASE, variant(items=list[Item2])) == []


def test_changed_default_is_compatible() -> None:
    assert check_compatibility(BASE, variant(note=(str, "n/a"))) == []


def test_docstring_and_nested_class_rename_are_compatible() -> None:
    class RenamedItem(msgspec.Struct, frozen=True, kw_only=True):
        """Now documented."""

        item_id: uuid.UUID
        position: int

    class Documented(msgspec.Struct, frozen=True, kw_only=True):
        """A different docstring."""

        course_id: uuid.UUID
        name: str
        price_in_cents: Annotated[int, msgspec.Meta(ge=0, description="cents")]
        status: Literal["published", "draft"]
        archived_at: UtcDateTime | None
        items: list[RenamedItem]
        note: str = ""

    assert check_compatibility(BASE, schema(Documented)) == []


def test_field_order_is_irrelevant() -> None:
    class Reordered(msgspec.Struct, frozen=True, kw_only=True):
        items: list[Item]
        note: str = ""
        archived_at: UtcDateTime | None
        status: Literal["draft", "published"]
        price_in_cents: Annotated[int, msgspec.Meta(ge=0)]
        name: str
        course_id: uuid.UUID

    assert check_compatibility(BASE, schema(Reordered)) == []


# --- snapshot comparison --------------------------------------------------------------------


def test_check_snapshot_reports_missing_removed_changed_and_incompatible() -> None:
    snapshot = {"a.b.c.v1": BASE, "gone.x.y.v1": BASE, "same.x.y.v1": BASE, "opt.x.y.v1": BASE}
    current = {
        "a.b.c.v1": variant(name=None),
        "same.x.y.v1": BASE,
        "opt.x.y.v1": variant(extra=(int, 0)),
        "new.x.y.v1": BASE,
    }
    report = check_snapshot(snapshot, current)
    assert set(report.incompatible) == {"a.b.c.v1"}
    assert report.missing == ["new.x.y.v1"]
    assert report.removed == ["gone.x.y.v1"]
    assert sorted(report.changed) == ["a.b.c.v1", "opt.x.y.v1"]
    assert report.breaking
    assert not report.up_to_date
    assert len(report.lines()) == 4


def test_check_snapshot_up_to_date() -> None:
    report = check_snapshot({"a.b.c.v1": BASE}, {"a.b.c.v1": schema(Base)})
    assert report.up_to_date
    assert report.lines() == []
