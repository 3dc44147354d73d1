"""The course data document: validation against its JSON Schema, and its two writes,
``update_json`` (append an audio entry under the row lock) and ``calculate_checksum`` (data,
checksum, size and updated_at written together), which always happen in one transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the workspace

from coursemesh.customgen.app.ports import CourseDataWriter
from coursemesh.customgen.domain.course import AudioEntry, Checksummed, append_audio
from coursemesh.customgen.domain.course import calculate_checksum as checksum_of


class InvalidCourseData(Exception):
    """The document does not satisfy its schema: a bug, never stored."""


@cache
def data_schema() -> dict[str, Any]:
    text = resources.files("coursemesh.customgen.schemas").joinpath("course-data.schema.json")
    schema: dict[str, Any] = json.loads(text.read_text())
    return schema


@cache
def _validator() -> Any:
    cls = jsonschema.validators.validator_for(data_schema())
    return cls(data_schema(), format_checker=cls.FORMAT_CHECKER)


def validate_data(data: Mapping[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        path = "/".join(str(p) for p in first.absolute_path)
        raise InvalidCourseData(f"course data invalid at /{path}: {first.message}")


def checked(data: Mapping[str, Any]) -> Checksummed:
    """Validate, then serialise canonically and checksum (what gets stored)."""
    validate_data(data)
    return checksum_of(data)


async def store_data(
    tx: CourseDataWriter, course_id: uuid.UUID, data: Mapping[str, Any]
) -> Checksummed:
    """``calculate_checksum``: the validated document with its checksum and size, stored."""
    stored = checked(data)
    await tx.store_data(course_id, stored)
    return stored


async def update_json(
    tx: CourseDataWriter, course_id: uuid.UUID, entry: AudioEntry
) -> Checksummed | None:
    """Append ``entry`` to ``data.audio_files`` (once: a repeat is a no-op). Concurrent calls
    queue on the row lock, so each sees the other's entry and none is lost."""
    current = await tx.lock_course_data(course_id)
    if current is None:
        return None
    updated = append_audio(current, entry)
    if updated is None:
        return None
    return await store_data(tx, course_id, updated)
