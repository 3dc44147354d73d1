"""Pure rules: checksum recipe, template scripts, data document edits, backoff, schema."""

from __future__ import annotations

import hashlib
import json
import uuid

import msgspec
import pytest

from coursemesh.customgen.app.course_data import InvalidCourseData, checked, validate_data
from coursemesh.customgen.domain.course import (
    AudioEntry,
    RetryPolicy,
    append_audio,
    audio_id_for,
    audio_object_key,
    calculate_checksum,
    canonical_json,
    initial_data,
    next_session_without_audio,
    replace_audio,
    with_scripts,
)
from coursemesh.customgen.domain.intake import Intake
from coursemesh.customgen.domain.template_scripts import write_template_scripts

INTAKE = Intake(goal="Feel calm before exams", preferred_name="Ana", focus_areas=["exam nerves"])


def entry(audio_id: str, session: int = 1, generation: int = 1) -> AudioEntry:
    return AudioEntry(
        id=audio_id,
        session=session,
        title="Session",
        object_key=f"k/{audio_id}/g{generation}.mp3",
        url=None,
        checksum="0" * 32,
        duration_ms=1000,
        size_bytes=10,
        format="mp3",
        generation=generation,
        created_at="2025-03-01T09:30:00Z",
    )


def document() -> dict[str, object]:
    data = initial_data(
        course_code="X99ENB", title="T", description="D", intake=INTAKE, script_writer="template"
    )
    return with_scripts(data, write_template_scripts(INTAKE))


def test_checksum_is_md5_of_sorted_compact_utf8_json() -> None:
    data = {"b": 1, "a": {"é": "ü", "z": [1, 2]}}
    expected_bytes = '{"a":{"z":[1,2],"é":"ü"},"b":1}'.encode()
    assert canonical_json(data) == expected_bytes
    stored = calculate_checksum(data)
    assert stored.checksum == hashlib.md5(expected_bytes).hexdigest()
    assert stored.size_bytes == len(expected_bytes)
    # Key order of the input does not matter.
    assert calculate_checksum({"a": {"é": "ü", "z": [1, 2]}, "b": 1}) == stored


def test_template_sessions_have_the_four_parts_and_carry_the_intake() -> None:
    sessions = write_template_scripts(INTAKE)
    assert len(sessions) == 3
    for session in sessions:
        assert [s.kind for s in session.sections] == [
            "induction",
            "deepener",
            "suggestions",
            "emergence",
        ]
        suggestions = session.sections[2].text
        assert "Feel calm before exams" in suggestions
        assert "exam nerves" in suggestions
        assert "Ana" in session.sections[0].text
        assert any("exam nerves" in p for p in session.reflection_prompts)
    assert len({s.title for s in sessions}) == 3  # a progression, not one session thrice
    assert write_template_scripts(INTAKE) == sessions  # deterministic


def test_brief_sessions_are_short_but_whole() -> None:
    brief = write_template_scripts(msgspec.structs.replace(INTAKE, session_length="brief"))
    standard = write_template_scripts(INTAKE)
    assert len(brief[0].spoken_text) < len(standard[0].spoken_text) / 2
    assert "exam nerves" in brief[0].spoken_text


def test_append_is_idempotent_per_audio_id() -> None:
    data = document()
    once = append_audio(data, entry("a"))
    assert once is not None
    assert len(once["audio_files"]) == 1
    assert append_audio(once, entry("a")) is None
    assert next_session_without_audio(once) == 2


def test_replace_only_moves_forward_in_generation() -> None:
    data = append_audio(document(), entry("a"))
    assert data is not None
    assert replace_audio(data, entry("a", generation=1)) is None
    assert replace_audio(data, entry("zz", generation=2)) is None
    newer = replace_audio(data, entry("a", generation=2))
    assert newer is not None
    assert newer["audio_files"][0]["generation"] == 2  # type: ignore[index]


def test_audio_ids_and_keys_are_deterministic() -> None:
    course = uuid.uuid4()
    assert audio_id_for(course, 1) == audio_id_for(course, 1) != audio_id_for(course, 2)
    key = audio_object_key(course, "a", 3)
    assert key == audio_object_key(course, "a", 3)
    assert key.endswith("/a/g3.mp3")


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=4, base_seconds=1.0, max_seconds=5.0)
    assert [policy.delay_after(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert not policy.exhausted(3)
    assert policy.exhausted(4)


def test_schema_accepts_generated_documents_and_rejects_drift() -> None:
    data = append_audio(document(), entry(str(uuid.uuid4())))
    assert data is not None
    stored = checked(data)
    assert json.loads(stored.text) == data
    broken = dict(data)
    broken["surprise"] = True
    with pytest.raises(InvalidCourseData):
        validate_data(broken)
    floaty = json.loads(stored.text)
    floaty["audio_files"][0]["duration_ms"] = 1.5
    with pytest.raises(InvalidCourseData, match="duration_ms"):
        validate_data(floaty)
