"""Schema compatibility rules for event contracts: pure functions over JSON Schema documents.

The schemas are those of :func:`msgspec.json.schema` (a ``$ref`` into ``$defs``). A change from
``old`` to ``new`` is **compatible** when every message valid under one decodes under the other,
for producers and consumers deployed in any order, and when a consumer ignoring unknown fields
reads a newer message. Concretely:

compatible
    a new optional field (it has a default); documentation changes (``title``, ``description``,
    ``examples``); a changed default; a renamed nested Struct class (``$ref`` targets are
    resolved, not compared by name); reordered ``enum`` values.

incompatible
    a field removed or renamed; a field's type changed (including nullability, format, enum
    values added or removed, constraints such as ``pattern``, ``minimum`` or ``maxLength`` added,
    removed or changed); a new required field; a field turned from required to optional or back;
    an object closed to unknown fields.

Anything incompatible needs a new event type (``….v2``), never an edit of a published one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SnapshotReport", "check_compatibility", "check_snapshot"]

Schema = Mapping[str, Any]

#: Keys that document a schema without constraining it.
ANNOTATION_KEYS = frozenset({"title", "description", "examples", "default", "$comment"})
#: Keys whose value is a list of sub-schemas compared position by position.
SCHEMA_LIST_KEYS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
#: Keys whose value is a single sub-schema.
SCHEMA_KEYS = frozenset({"items", "additionalProperties", "not", "contains"})
#: Keys whose value is compared as a set.
SET_KEYS = frozenset({"enum", "type"})


def check_compatibility(old: Schema, new: Schema) -> list[str]:
    """Why ``new`` is not a compatible evolution of ``old``; an empty list means compatible."""
    problems: list[str] = []
    _compare(old, old, new, new, "$", problems, set())
    return problems


@dataclass
class SnapshotReport:
    """The result of comparing a committed snapshot with the current schemas."""

    incompatible: dict[str, list[str]] = field(default_factory=dict)
    """Name -> problems, for names in both whose schema changed incompatibly."""
    missing: list[str] = field(default_factory=list)
    """Names with a current schema but no snapshot (new types: write the snapshot)."""
    removed: list[str] = field(default_factory=list)
    """Names in the snapshot that no longer exist (a published type was deleted)."""
    changed: list[str] = field(default_factory=list)
    """Names whose schema differs from the snapshot at all, compatibly or not."""

    @property
    def breaking(self) -> bool:
        return bool(self.incompatible or self.removed)

    @property
    def up_to_date(self) -> bool:
        return not (self.breaking or self.missing or self.changed)

    def lines(self) -> list[str]:
        out: list[str] = []
        for name, problems in sorted(self.incompatible.items()):
            out.extend(f"INCOMPATIBLE {name}: {p}" for p in problems)
        out.extend(f"REMOVED {name}: a published type was deleted" for name in self.removed)
        out.extend(f"MISSING {name}: no snapshot yet" for name in self.missing)
        compatible_changes = sorted(set(self.changed) - set(self.incompatible))
        out.extend(f"CHANGED {name}: compatible, snapshot stale" for name in compatible_changes)
        return out


def check_snapshot(snapshot: Mapping[str, Schema], current: Mapping[str, Schema]) -> SnapshotReport:
    """Compare every named schema of ``current`` with the committed ``snapshot``."""
    report = SnapshotReport()
    for name in sorted(current):
        if name not in snapshot:
            report.missing.append(name)
            continue
        if snapshot[name] != current[name]:
            report.changed.append(name)
        problems = check_compatibility(snapshot[name], current[name])
        if problems:
            report.incompatible[name] = problems
    report.removed = sorted(set(snapshot) - set(current))
    return report


# --- implementation ------------------------------------------------------------------------


def _resolve(doc: Schema, node: Schema) -> Schema:
    seen: set[str] = set()
    while "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/$defs/") or ref in seen:
            raise ValueError(f"unsupported or cyclic $ref {ref!r}")
        seen.add(ref)
        node = doc["$defs"][ref.removeprefix("#/$defs/")]
    return node


def _is_struct(node: Schema) -> bool:
    return node.get("type") == "object" and "properties" in node


def _compare(
    old_doc: Schema,
    old_node: Schema,
    new_doc: Schema,
    new_node: Schema,
    path: str,
    problems: list[str],
    seen: set[tuple[str, str]],
) -> None:
    old_ref, new_ref = old_node.get("$ref"), new_node.get("$ref")
    if isinstance(old_ref, str) and isinstance(new_ref, str):
        if (old_ref, new_ref) in seen:  # recursive type: already being compared
            return
        seen = {*seen, (old_ref, new_ref)}
    old = _resolve(old_doc, old_node)
    new = _resolve(new_doc, new_node)

    if _is_struct(old) and _is_struct(new):
        _compare_struct(old_doc, old, new_doc, new, path, problems, seen)
        return
    if _is_struct(old) != _is_struct(new):
        problems.append(f"{path}: type changed ({_describe(old)} -> {_describe(new)})")
        return

    old_keys = set(old) - ANNOTATION_KEYS
    new_keys = set(new) - ANNOTATION_KEYS
    if old_keys != new_keys:
        problems.append(f"{path}: type changed ({_describe(old)} -> {_describe(new)})")
        return
    for key in sorted(old_keys):
        o, n = old[key], new[key]
        if key in SCHEMA_KEYS and isinstance(o, Mapping) and isinstance(n, Mapping):
            sub = path + ("[]" if key == "items" else f".<{key}>")
            _compare(old_doc, o, new_doc, n, sub, problems, seen)
        elif key in SCHEMA_LIST_KEYS and isinstance(o, Sequence) and isinstance(n, Sequence):
            if len(o) != len(n):
                problems.append(f"{path}: type changed ({_describe(old)} -> {_describe(new)})")
                continue
            for i, (oi, ni) in enumerate(zip(o, n, strict=True)):
                _compare(old_doc, oi, new_doc, ni, f"{path}<{key}[{i}]>", problems, seen)
        elif key in SET_KEYS:
            if _as_set(o) != _as_set(n):
                problems.append(f"{path}: {key} changed ({o!r} -> {n!r})")
        elif o != n:
            problems.append(f"{path}: {key} changed ({o!r} -> {n!r})")


def _compare_struct(
    old_doc: Schema,
    old: Schema,
    new_doc: Schema,
    new: Schema,
    path: str,
    problems: list[str],
    seen: set[tuple[str, str]],
) -> None:
    old_props: Mapping[str, Schema] = old["properties"]
    new_props: Mapping[str, Schema] = new["properties"]
    old_required = set(old.get("required", ()))
    new_required = set(new.get("required", ()))
    for name in old_props:
        sub = f"{path}.{name}"
        if name not in new_props:
            problems.append(f"{sub}: field removed (or renamed)")
            continue
        if name in old_required and name not in new_required:
            problems.append(f"{sub}: required field became optional")
        elif name not in old_required and name in new_required:
            problems.append(f"{sub}: optional field became required")
        _compare(old_doc, old_props[name], new_doc, new_props[name], sub, problems, seen)
    for name in new_props:
        if name in old_props:
            continue
        if name in new_required:
            problems.append(f"{path}.{name}: new required field")
        elif old.get("additionalProperties") is False:
            problems.append(f"{path}.{name}: new field on an object that forbids unknown fields")
    if new.get("additionalProperties") is False and old.get("additionalProperties") is not False:
        problems.append(f"{path}: object now forbids unknown fields")


def _as_set(value: Any) -> frozenset[str]:
    items = value if isinstance(value, list) else [value]
    return frozenset(repr(v) for v in items)


def _describe(node: Schema) -> str:
    shown = {k: v for k, v in node.items() if k not in ANNOTATION_KEYS}
    if _is_struct(node):
        return f"object {node.get('title', '')}".rstrip()
    text = repr(shown)
    return text if len(text) <= 80 else text[:77] + "..."
