"""Generation jobs: a durable job per course (``generate``) or per approved regen request
(``regenerate``), moved one step at a time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from coursemesh.customgen.domain.course import JobKind


@dataclass(frozen=True, slots=True)
class Job:
    id: uuid.UUID
    custom_course_id: uuid.UUID
    kind: JobKind
    regen_request_id: uuid.UUID | None
    step: str
    attempts: int
    state: dict[str, Any] = field(default_factory=dict)
    """What a step hands to the next (a regeneration's new entry and the key it replaces)."""


def failure_text(exc: BaseException) -> str:
    """What a failed step records as its ``last_error`` (bounded)."""
    return f"{type(exc).__name__}: {exc}"[:1000]
