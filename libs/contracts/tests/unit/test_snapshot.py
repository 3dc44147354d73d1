"""The committed schema snapshot (libs/contracts/schemas/events.v1.json) guards every contract.

Regenerate on purpose with ``uv run python -m coursemesh.contracts.snapshot --write``; it refuses
incompatible changes (those need a new ``….v2`` type).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from coursemesh.contracts import registry
from coursemesh.contracts.compat import check_compatibility
from coursemesh.contracts.snapshot import (
    ENVELOPE_KEY,
    current_schemas,
    default_path,
    dumps,
    flatten,
    load,
    main,
)

SNAPSHOT_PATH = default_path()
REGENERATE = "uv run python -m coursemesh.contracts.snapshot --write"


@pytest.fixture(scope="module")
def snapshot() -> dict[str, Any]:
    assert SNAPSHOT_PATH.exists(), f"{SNAPSHOT_PATH} is missing; run `{REGENERATE}`"
    return flatten(load(SNAPSHOT_PATH))


CURRENT = flatten(current_schemas())


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_schema_is_compatible_with_snapshot(name: str, snapshot: dict[str, Any]) -> None:
    if name not in snapshot:
        pytest.fail(f"{name} has no snapshot; run `{REGENERATE}`")
    problems = check_compatibility(snapshot[name], CURRENT[name])
    assert not problems, (
        f"{name} changed incompatibly (publish a new ….v2 type instead):\n" + "\n".join(problems)
    )


def test_every_registered_event_has_a_snapshot(snapshot: dict[str, Any]) -> None:
    missing = sorted(set(registry()) - set(snapshot))
    assert not missing, f"no snapshot for {missing}; run `{REGENERATE}`"
    assert ENVELOPE_KEY in snapshot


def test_no_snapshotted_event_was_removed(snapshot: dict[str, Any]) -> None:
    removed = sorted(set(snapshot) - set(CURRENT))
    assert not removed, f"published event types disappeared: {removed}"


def test_snapshot_is_up_to_date(snapshot: dict[str, Any]) -> None:
    stale = sorted(name for name in CURRENT if snapshot.get(name) != CURRENT[name])
    assert not stale, f"snapshot is stale for {stale}; run `{REGENERATE}`"


def test_snapshot_file_is_canonical() -> None:
    assert SNAPSHOT_PATH.read_text(encoding="utf-8") == dumps(current_schemas()), (
        f"snapshot file not written by the tool; run `{REGENERATE}`"
    )


def test_every_instant_is_timezone_aware() -> None:
    """Naive datetimes would be both ambiguous and invisible in the schema (no format)."""
    offenders = []
    for name, cls in registry().items():
        offenders += [f"{name}: {p}" for p in _naive_datetimes(msgspec.inspect.type_info(cls))]
    assert not offenders, "use types.UtcDateTime for: " + ", ".join(offenders)


def _naive_datetimes(t: msgspec.inspect.Type, path: str = "$") -> list[str]:
    mi = msgspec.inspect
    if isinstance(t, mi.DateTimeType):
        return [] if t.tz is True else [path]
    if isinstance(t, mi.Metadata):
        return _naive_datetimes(t.type, path)
    if isinstance(t, mi.UnionType):
        return [p for sub in t.types for p in _naive_datetimes(sub, path)]
    if isinstance(t, mi.CollectionType):
        return _naive_datetimes(t.item_type, path + "[]")
    if isinstance(t, mi.StructType):
        return [p for f in t.fields for p in _naive_datetimes(f.type, f"{path}.{f.name}")]
    return []


# --- the command line -----------------------------------------------------------------------


def test_cli_check_passes_on_committed_snapshot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "up to date" in capsys.readouterr().out


def test_cli_write_creates_then_check_passes(tmp_path: Path) -> None:
    path = tmp_path / "schemas" / "events.v1.json"
    assert main(["--path", str(path)]) == 1  # nothing recorded yet
    assert main(["--path", str(path), "--write"]) == 0
    assert main(["--path", str(path)]) == 0
    assert json.loads(path.read_text())["events"].keys() == registry().keys()


def _tamper(path: Path, edit: Any) -> None:
    doc = load(SNAPSHOT_PATH)
    edit(doc)
    path.write_text(dumps(doc))


def test_cli_write_refuses_incompatible_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.v1.json"
    # pretend the snapshot had a field the code no longer has: the code "removed" it
    defs = "$defs"

    def add_required_field(doc: dict[str, Any]) -> None:
        entry = doc["events"]["catalog.course.published.v1"]
        (struct,) = entry[defs].values()
        struct["properties"]["legacy"] = {"type": "string"}
        struct["required"].append("legacy")

    _tamper(path, add_required_field)
    before = path.read_text()
    assert main(["--path", str(path), "--write"]) == 1
    out = capsys.readouterr().out
    assert "INCOMPATIBLE catalog.course.published.v1: $.legacy: field removed" in out
    assert path.read_text() == before
    assert main(["--path", str(path), "--write", "--allow-breaking"]) == 0
    assert main(["--path", str(path)]) == 0


def test_cli_write_accepts_compatible_change(tmp_path: Path) -> None:
    path = tmp_path / "events.v1.json"

    def predate_optional_field(doc: dict[str, Any]) -> None:
        # the snapshot predates the envelope's optional ``trace``: the code added it compatibly
        (struct,) = doc[ENVELOPE_KEY]["$defs"].values()
        del struct["properties"]["trace"]
        struct["description"] = "older docs"

    _tamper(path, predate_optional_field)
    assert main(["--path", str(path)]) == 1  # stale
    assert main(["--path", str(path), "--write"]) == 0
    assert main(["--path", str(path)]) == 0


def test_cli_write_refuses_removed_type(tmp_path: Path) -> None:
    path = tmp_path / "events.v1.json"

    def add_ghost(doc: dict[str, Any]) -> None:
        doc["events"]["catalog.ghost.vanished.v1"] = doc["events"]["demo.counter.set.v1"]

    _tamper(path, add_ghost)
    assert main(["--path", str(path), "--write"]) == 1
