"""Custom courses: the course data document, its checksum, audio object keys, job steps.

Pure rules only. The data document is a plain JSON-compatible ``dict`` (it is what clients
store offline); its shape is fixed by ``course-data.schema.json``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec

from coursemesh.customgen.domain.intake import Intake

DATA_SCHEMA_VERSION: Final = 1
AUDIO_CONTENT_TYPES: Final = {"mp3": "audio/mpeg"}
CONTENT_ADDRESSED_PREFIX: Final = "audio/sha256/"

CourseStatus = Literal["generating", "ready", "failed"]
JobKind = Literal["generate", "regenerate"]
JobStatus = Literal["pending", "done", "failed"]
# Steps of a job, in order. "synthesize" repeats once per session (generate) or once (regenerate).
GenerateStep = Literal["write_scripts", "synthesize", "finalize"]
RegenerateStep = Literal["synthesize", "swap", "delete_old"]

SectionKind = Literal["induction", "deepener", "suggestions", "emergence"]


class ScriptSection(msgspec.Struct, frozen=True):
    kind: SectionKind
    text: str


class SessionScript(msgspec.Struct, frozen=True):
    """One session as a script writer delivers it."""

    title: str
    sections: list[ScriptSection]
    reflection_prompts: list[str]

    @property
    def spoken_text(self) -> str:
        return "\n\n".join(section.text for section in self.sections)


@dataclass(frozen=True, slots=True)
class StoredCourse:
    """A custom course as stored; ``data`` is its document, decoded."""

    id: uuid.UUID
    user_id: str
    organization_id: uuid.UUID
    course_code: str
    status: CourseStatus
    data: dict[str, Any]
    checksum: str
    file_size_bytes: int
    version: int


class AudioEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One element of ``data.audio_files``."""

    id: str
    session: int
    title: str
    object_key: str
    url: str | None
    checksum: str
    duration_ms: int
    size_bytes: int
    format: str
    generation: int
    created_at: str
    # Absent in entries written before content addressing; such an entry keeps its per-course
    # key and is identified by its MD5 alone.
    sha256: str | None = msgspec.field(default=None)
    content_type: str | None = msgspec.field(default=None)

    @property
    def media_type(self) -> str:
        return self.content_type or AUDIO_CONTENT_TYPES.get(self.format, "application/octet-stream")

    @property
    def etag(self) -> str:
        """The strong HTTP entity tag of the file: its SHA-256, or its MD5 for a legacy entry."""
        return f'"{self.sha256 or self.checksum}"'


# --- checksum --------------------------------------------------------------------------------


def canonical_json(data: Mapping[str, Any]) -> bytes:
    """The bytes the checksum is taken over: keys sorted, no whitespace, UTF-8, no escaping
    of non-ASCII. Clients recompute ``md5(canonical_json(data))`` to verify an offline copy."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Checksummed(msgspec.Struct, frozen=True):
    text: str
    checksum: str
    size_bytes: int


def calculate_checksum(data: Mapping[str, Any]) -> Checksummed:
    raw = canonical_json(data)
    return Checksummed(raw.decode(), hashlib.md5(raw).hexdigest(), len(raw))


# --- identities and keys ---------------------------------------------------------------------

_AUDIO_NAMESPACE = uuid.UUID("6d1f3c52-2c55-4b8e-9a57-0f6a3a1d2b10")


def audio_id_for(course_id: uuid.UUID, session: int) -> uuid.UUID:
    """Deterministic, so a resumed job recognises the entry it may already have appended."""
    return uuid.uuid5(_AUDIO_NAMESPACE, f"{course_id}:{session}")


def audio_object_key(course_id: uuid.UUID, audio_id: str, generation: int) -> str:
    """The legacy per-course key: entries written before content addressing still name it."""
    return f"custom-courses/{course_id}/audio/{audio_id}/g{generation}.mp3"


def content_object_key(sha256_hex: str, extension: str = "mp3") -> str:
    """The bucket-wide key of audio bytes: derived from their SHA-256 alone, so identical bytes
    of any course land on one object, and a retried upload finds the object already there.
    Two hex digits fan the keys out over 256 prefixes."""
    digest = sha256_hex.lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("not a SHA-256 hex digest")
    return f"{CONTENT_ADDRESSED_PREFIX}{digest[:2]}/{digest}.{extension}"


def is_content_addressed(key: str) -> bool:
    """Objects under these keys may be shared by several courses: never deleted for one."""
    return key.startswith(CONTENT_ADDRESSED_PREFIX)


# --- the data document -----------------------------------------------------------------------


def course_title(offer_title: str, intake: Intake) -> str:
    return f"{offer_title} for {intake.preferred_name}"


def course_description(intake: Intake) -> str:
    sessions = "session" if intake.session_count == 1 else "sessions"
    return (
        f"A personalised hypnotherapy course of {intake.session_count} {sessions} "
        f"for {intake.preferred_name}. Goal: {intake.goal}"
    )


def initial_data(
    *, course_code: str, title: str, description: str, intake: Intake, script_writer: str
) -> dict[str, Any]:
    return {
        "schema_version": DATA_SCHEMA_VERSION,
        "metadata": {
            "course_code": course_code,
            "title": title,
            "description": description,
            "language": "en",
            "script_writer": script_writer,
            "intake": {
                "goal": intake.goal,
                "preferred_name": intake.preferred_name,
                "focus_areas": list(intake.focus_areas),
                "voice": intake.voice,
                "session_count": intake.session_count,
                "session_length": intake.session_length,
            },
        },
        "scripts": [],
        "workbooks": [],
        "audio_files": [],
    }


def with_scripts(data: Mapping[str, Any], sessions: Sequence[SessionScript]) -> dict[str, Any]:
    """Scripts and one workbook per session (its reflection prompts)."""
    updated = dict(data)
    updated["scripts"] = [
        {
            "session": number,
            "title": session.title,
            "sections": [{"kind": s.kind, "text": s.text} for s in session.sections],
        }
        for number, session in enumerate(sessions, start=1)
    ]
    updated["workbooks"] = [
        {"session": number, "title": session.title, "prompts": list(session.reflection_prompts)}
        for number, session in enumerate(sessions, start=1)
    ]
    return updated


def session_scripts(data: Mapping[str, Any]) -> list[SessionScript]:
    prompts = {w["session"]: w["prompts"] for w in data.get("workbooks", [])}
    return [
        SessionScript(
            title=script["title"],
            sections=[ScriptSection(s["kind"], s["text"]) for s in script["sections"]],
            reflection_prompts=list(prompts.get(script["session"], [])),
        )
        for script in sorted(data.get("scripts", []), key=lambda s: int(s["session"]))
    ]


def intake_of(data: Mapping[str, Any]) -> Intake:
    """The intake the document was made from (``metadata.intake``)."""
    raw = data["metadata"]["intake"]
    return Intake(
        goal=raw["goal"],
        preferred_name=raw["preferred_name"],
        focus_areas=list(raw["focus_areas"]),
        voice=raw["voice"],
        session_count=raw["session_count"],
        session_length=raw["session_length"],
    )


def audio_entries(data: Mapping[str, Any]) -> list[AudioEntry]:
    return [msgspec.convert(entry, AudioEntry) for entry in data.get("audio_files", [])]


def next_session_without_audio(data: Mapping[str, Any]) -> int | None:
    """The first session (1-based) whose audio is not in ``audio_files`` yet."""
    have = {entry["session"] for entry in data.get("audio_files", [])}
    for script in sorted(data.get("scripts", []), key=lambda s: int(s["session"])):
        if script["session"] not in have:
            return int(script["session"])
    return None


def append_audio(data: Mapping[str, Any], entry: AudioEntry) -> dict[str, Any] | None:
    """``data`` with ``entry`` appended, or None when an entry with that id is already there
    (a resumed step must not append twice)."""
    files = list(data.get("audio_files", []))
    if any(existing["id"] == entry.id for existing in files):
        return None
    updated = dict(data)
    updated["audio_files"] = [*files, msgspec.to_builtins(entry)]
    return updated


def replace_audio(data: Mapping[str, Any], entry: AudioEntry) -> dict[str, Any] | None:
    """``data`` with the entry of the same id replaced by ``entry``; None when that entry is
    unknown or already at this generation or a newer one."""
    files = list(data.get("audio_files", []))
    for index, existing in enumerate(files):
        if existing["id"] == entry.id:
            if int(existing["generation"]) >= entry.generation:
                return None
            files[index] = msgspec.to_builtins(entry)
            updated = dict(data)
            updated["audio_files"] = files
            return updated
    return None


def find_audio(data: Mapping[str, Any], audio_id: str) -> AudioEntry | None:
    for entry in data.get("audio_files", []):
        if entry["id"] == audio_id:
            return msgspec.convert(entry, AudioEntry)
    return None


# --- retries ---------------------------------------------------------------------------------


class RetryPolicy(msgspec.Struct, frozen=True):
    max_attempts: int
    base_seconds: float
    max_seconds: float

    def delay_after(self, attempts: int) -> float:
        """Exponential backoff: base, 2·base, 4·base … capped at ``max_seconds``."""
        return float(min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1)))

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def after_failure(self, attempts: int) -> RetryLater | GiveUp:
        """What a step that failed for the ``attempts``-th time in a row leads to."""
        if self.exhausted(attempts):
            return GiveUp(attempts)
        return RetryLater(attempts, self.delay_after(attempts))


class RetryLater(msgspec.Struct, frozen=True):
    """Try the step again after ``delay_seconds``."""

    attempts: int
    delay_seconds: float


class GiveUp(msgspec.Struct, frozen=True):
    """The step has used its attempts: the job fails at that step."""

    attempts: int
