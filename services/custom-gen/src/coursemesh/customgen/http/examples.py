"""Examples of the OpenAPI document, built by the code that writes the real thing.

Litestar's generated examples cannot stand in for these: it makes up a value per declared type,
and a ``msgspec.Raw`` made up that way is empty, which encodes as nothing at all (``"data":}``,
a document that is not JSON). Built from the domain, the course data here has the stored shape
and the checksum and size a client recomputes, so a client can test its sync against them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar.openapi.spec import Example, Reference

from coursemesh.customgen.app.views import HandshakeResult, SyncedCourse
from coursemesh.customgen.domain.course import (
    AudioEntry,
    append_audio,
    audio_id_for,
    audio_object_key,
    calculate_checksum,
    course_description,
    course_title,
    initial_data,
    with_scripts,
)
from coursemesh.customgen.domain.intake import Intake
from coursemesh.customgen.domain.template_scripts import write_template_scripts
from coursemesh.customgen.http.handshake_body import Handshake, HeldCourse

_UPDATED_AT = datetime(2025, 3, 1, 9, 30, 5, tzinfo=UTC)
# A bucket with public URLs (``S3_PUBLIC_BASE_URL``), not a private one's ``"url": null``:
# Litestar drops every null from an example's value, and without its ``url`` the document
# would neither satisfy its schema nor match its checksum.
_PUBLIC_BASE_URL = "https://audio.example.com"


def _synced_course(
    course_id: uuid.UUID, course_code: str, offer_title: str, intake: Intake, audio_md5: str
) -> SyncedCourse:
    """A ready one-session course, as the template script writer and the local engine make it."""
    title = course_title(offer_title, intake)
    description = course_description(intake)
    scripts = write_template_scripts(intake)
    data = with_scripts(
        initial_data(
            course_code=course_code,
            title=title,
            description=description,
            intake=intake,
            script_writer="template",
        ),
        scripts,
    )
    audio_id = str(audio_id_for(course_id, 1))
    object_key = audio_object_key(course_id, audio_id, 1)
    entry = AudioEntry(
        id=audio_id,
        session=1,
        title=scripts[0].title,
        object_key=object_key,
        url=f"{_PUBLIC_BASE_URL}/{object_key}",
        checksum=audio_md5,
        duration_ms=21340,
        size_bytes=171234,
        format="mp3",
        generation=1,
        created_at="2025-03-01T09:30:00.123456Z",
    )
    with_audio = append_audio(data, entry)
    assert with_audio is not None  # a fresh document holds no audio entry yet
    stored = calculate_checksum(with_audio)
    return SyncedCourse(
        id=course_id,
        course_code=course_code,
        title=title,
        description=description,
        checksum=stored.checksum,
        file_size_bytes=stored.size_bytes,
        updated_at=_UPDATED_AT,
        data=msgspec.Raw(stored.text.encode()),
    )


def _wire(value: msgspec.Struct) -> Any:
    """``value`` as the route encodes it, so the example cannot drift from the wire format."""
    return msgspec.json.decode(msgspec.json.encode(value))


# The client of the examples holds three courses: an older copy of the first (``changed``), one
# up to date, and one it may no longer keep (``removed``); the second course of the answer
# (``missing``) has never been on this device.
_CHANGED_ID = uuid.UUID("0195f0a0-0000-7000-8000-0000000000c1")
_MISSING_ID = uuid.UUID("0195f0a0-0000-7000-8000-0000000000c2")
_UNCHANGED_ID = uuid.UUID("0195f0a0-0000-7000-8000-0000000000c3")
_REMOVED_ID = uuid.UUID("0195f0a0-0000-7000-8000-0000000000c9")


def handshake_request_example() -> dict[str, Example | Reference]:
    """The request that :func:`handshake_examples` answers."""
    body = Handshake(
        courses=[
            HeldCourse(id=_CHANGED_ID, checksum="9e107d9d372bb6826bd81d3542a419d6"),
            HeldCourse(id=_UNCHANGED_ID, checksum="e4d909c290d0fb1ca068ffaddf22cbd0"),
            HeldCourse(id=_REMOVED_ID, checksum="d41d8cd98f00b204e9800998ecf8427e"),
        ]
    )
    return {
        "three-copies": Example(
            summary="Three offline copies and their checksums",
            value=_wire(body),
        )
    }


def handshake_examples() -> list[Example]:
    changed = _synced_course(
        _CHANGED_ID,
        "X99ENB",
        "Restful Sleep",
        Intake(
            goal="Sleep deeply and wake rested",
            preferred_name="Sam",
            focus_areas=["evening worries"],
            session_count=1,
            session_length="brief",
        ),
        "5d41402abc4b2a76b9719d911017c592",
    )
    missing = _synced_course(
        _MISSING_ID,
        "X42CLM",
        "Calm Focus",
        Intake(
            goal="Stay calm before exams",
            preferred_name="Sam",
            focus_areas=["racing thoughts"],
            voice="neutral",
            session_count=1,
            session_length="brief",
        ),
        "7d793037a0760186574b0282f2f435e7",
    )
    result = HandshakeResult(
        changed=[changed],
        missing=[missing],
        removed=[_REMOVED_ID],
        unchanged_count=1,
    )
    return [
        Example(
            summary="One copy out of date, one course not held, one copy to remove",
            description="The client held three courses and sent their checksums; the buyer "
            "also owns a course this device has never held. Each course's `checksum` and "
            "`fileSizeBytes` are the MD5 and length of the canonical JSON of its `data`.",
            value=_wire(result),
        )
    ]
