"""The course data document: validation against its JSON Schema, and the two writes the seed
names, ``update_json`` (append an audio entry under a row lock) and ``calculate_checksum``
(checksum + size + updated_at), which always happen in the same transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the workspace
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from coursemesh.customgen.adapters.tables import custom_courses
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


async def lock_course_data(session: AsyncSession, course_id: uuid.UUID) -> dict[str, Any] | None:
    """The course's data, with its row locked until the transaction ends."""
    row = (
        await session.execute(
            sa.select(custom_courses.c.data)
            .where(custom_courses.c.id == course_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        return None
    data: dict[str, Any] = json.loads(row.data)
    return data


async def store_data(
    session: AsyncSession,
    course_id: uuid.UUID,
    data: Mapping[str, Any],
    **columns: Any,
) -> Checksummed:
    """``calculate_checksum``: write data, checksum, size and updated_at in one statement."""
    stored = checked(data)
    await session.execute(
        sa.update(custom_courses)
        .where(custom_courses.c.id == course_id)
        .values(
            data=stored.text,
            checksum=stored.checksum,
            file_size_bytes=stored.size_bytes,
            updated_at=sa.func.now(),
            **columns,
        )
    )
    return stored


async def update_data(
    session: AsyncSession,
    course_id: uuid.UUID,
    change: Callable[[dict[str, Any]], dict[str, Any] | None],
) -> Checksummed | None:
    """Read-modify-write under the row lock; ``change`` returns None for "nothing to do"."""
    current = await lock_course_data(session, course_id)
    if current is None:
        return None
    updated = change(current)
    if updated is None:
        return None
    return await store_data(session, course_id, updated)


async def update_json(
    session: AsyncSession, course_id: uuid.UUID, entry: AudioEntry
) -> Checksummed | None:
    """Append ``entry`` to ``data.audio_files`` (once: a repeat is a no-op). Concurrent calls
    queue on the row lock, so each sees the other's entry and none is lost."""
    return await update_data(session, course_id, lambda data: append_audio(data, entry))
