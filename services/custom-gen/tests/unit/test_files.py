"""Content-addressed keys, the file manifest and the download plan: pure rules."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import msgspec
import pytest

from coursemesh.customgen.domain.course import (
    AudioEntry,
    audio_entries,
    audio_object_key,
    content_object_key,
    is_content_addressed,
)
from coursemesh.customgen.domain.files import (
    NotModified,
    PartOfFile,
    RangeNotSatisfiable,
    WholeFile,
    build_manifest,
    plan_delivery,
)

COURSE = uuid.UUID("0195f0a0-0000-7000-8000-0000000000c1")
BODY = b"ID3 fake mp3 bytes" * 10
SHA = hashlib.sha256(BODY).hexdigest()
MD5 = hashlib.md5(BODY).hexdigest()


def entry(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "session": 1,
        "title": "Session 1",
        "object_key": content_object_key(SHA),
        "url": None,
        "checksum": MD5,
        "duration_ms": 1000,
        "size_bytes": len(BODY),
        "format": "mp3",
        "generation": 1,
        "created_at": "2026-12-01T10:00:00Z",
        "sha256": SHA,
        "content_type": "audio/mpeg",
    }
    value.update(changes)
    return value


def test_the_content_key_is_derived_from_the_sha256_alone() -> None:
    key = content_object_key(SHA)
    assert key == f"audio/sha256/{SHA[:2]}/{SHA}.mp3"
    assert content_object_key(SHA.upper()) == key
    assert is_content_addressed(key)
    assert not is_content_addressed(audio_object_key(COURSE, "a", 1))
    for bad in ("", "abc", SHA[:-1] + "g", SHA + "0"):
        with pytest.raises(ValueError):
            content_object_key(bad)


def test_a_legacy_entry_without_sha256_still_decodes_and_is_not_re_encoded_with_nulls() -> None:
    legacy = entry(object_key=audio_object_key(COURSE, "a", 1))
    del legacy["sha256"], legacy["content_type"]
    (decoded,) = audio_entries({"audio_files": [legacy]})
    assert (decoded.sha256, decoded.content_type, decoded.media_type) == (None, None, "audio/mpeg")
    assert decoded.etag == f'"{MD5}"'
    assert msgspec.to_builtins(decoded) == legacy


def test_the_manifest_lists_every_file_by_session_with_its_digests_and_path() -> None:
    second = entry(session=2)
    legacy = entry(session=1, object_key=audio_object_key(COURSE, "a", 1))
    del legacy["sha256"], legacy["content_type"]
    manifest = build_manifest(COURSE, "c" * 32, {"audio_files": [second, legacy]})
    assert (manifest.custom_course_id, manifest.checksum) == (COURSE, "c" * 32)
    first, last = manifest.files
    assert (first.file_id, first.session, first.sha256, first.md5) == (legacy["id"], 1, None, MD5)
    assert (last.file_id, last.sha256, last.size_bytes) == (second["id"], SHA, len(BODY))
    assert last.content_type == first.content_type == "audio/mpeg"
    assert last.object_key == content_object_key(SHA)
    assert last.path == f"/me/custom-courses/{COURSE}/files/{second['id']}"
    assert build_manifest(COURSE, "c" * 32, {"audio_files": []}).files == []


SIZE = len(BODY)
ETAG = f'"{SHA}"'


@pytest.mark.parametrize(
    ("range_header", "if_range", "expected"),
    [
        (None, None, WholeFile()),
        ("bytes=0-9", None, PartOfFile(0, 9, SIZE)),
        ("bytes=10-", None, PartOfFile(10, SIZE - 1, SIZE)),
        ("bytes=-5", None, PartOfFile(SIZE - 5, SIZE - 1, SIZE)),
        ("bytes=-99999", None, PartOfFile(0, SIZE - 1, SIZE)),
        ("bytes=5-99999", None, PartOfFile(5, SIZE - 1, SIZE)),
        (f"bytes={SIZE}-", None, RangeNotSatisfiable(SIZE)),
        ("bytes=-0", None, RangeNotSatisfiable(SIZE)),
        # Malformed or several ranges: ignored, the whole file.
        ("bytes=9-3", None, WholeFile()),
        ("bytes=-", None, WholeFile()),
        ("bytes=0-1,5-6", None, WholeFile()),
        ("items=0-1", None, WholeFile()),
        ("bytes=" + "9" * 5000 + "-", None, WholeFile()),
        # If-Range: the current ETag lets the range through; anything else gets everything.
        ("bytes=0-9", ETAG, PartOfFile(0, 9, SIZE)),
        ("bytes=0-9", '"other"', WholeFile()),
        ("bytes=0-9", "Wed, 21 Oct 2015 07:28:00 GMT", WholeFile()),
    ],
)
def test_a_download_plans_the_range_asked_for(
    range_header: str | None, if_range: str | None, expected: object
) -> None:
    audio = msgspec.convert(entry(), AudioEntry)
    plan = plan_delivery(audio, range_header=range_header, if_none_match=None, if_range=if_range)
    assert plan == expected


def test_if_none_match_with_the_current_etag_is_not_modified() -> None:
    audio = msgspec.convert(entry(), AudioEntry)
    for header in (ETAG, f'"x", W/{ETAG}', "*"):
        plan = plan_delivery(audio, range_header="bytes=0-1", if_none_match=header, if_range=None)
        assert plan == NotModified()
    stale = plan_delivery(audio, range_header=None, if_none_match='"stale"', if_range=None)
    assert stale == WholeFile()
    part = PartOfFile(0, 9, SIZE)
    assert (part.length, part.content_range) == (10, f"bytes 0-9/{SIZE}")
    assert RangeNotSatisfiable(SIZE).content_range == f"bytes */{SIZE}"
