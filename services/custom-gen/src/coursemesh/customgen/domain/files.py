"""The files of a custom course: the manifest a client syncs against, and what a download
request gets (whole file, one byte range, not modified, or an unsatisfiable range).

Pure rules over the course document and request header values; the use cases add URLs and the
bytes themselves.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coursemesh.customgen.domain.course import AudioEntry, audio_entries


@dataclass(frozen=True, slots=True)
class ManifestFile:
    """One file of a course: how to verify it (``md5``, ``sha256``, ``size_bytes``) and where
    it is (``object_key`` in the bucket, ``path`` through the gateway)."""

    file_id: str
    session: int
    md5: str
    sha256: str | None
    """``None`` for an entry written before content addressing."""
    size_bytes: int
    content_type: str
    object_key: str
    path: str


@dataclass(frozen=True, slots=True)
class Manifest:
    custom_course_id: uuid.UUID
    checksum: str
    """The course document's checksum: the manifest belongs to this version of it."""
    files: list[ManifestFile]


def file_path(course_id: uuid.UUID, file_id: str) -> str:
    """The gateway path that streams one file of a course to its owner."""
    return f"/me/custom-courses/{course_id}/files/{file_id}"


def build_manifest(course_id: uuid.UUID, checksum: str, data: Mapping[str, Any]) -> Manifest:
    """Every audio file of the document, by session."""
    entries = sorted(audio_entries(data), key=lambda e: (e.session, e.id))
    return Manifest(
        custom_course_id=course_id,
        checksum=checksum,
        files=[
            ManifestFile(
                file_id=entry.id,
                session=entry.session,
                md5=entry.checksum,
                sha256=entry.sha256,
                size_bytes=entry.size_bytes,
                content_type=entry.media_type,
                object_key=entry.object_key,
                path=file_path(course_id, entry.id),
            )
            for entry in entries
        ],
    )


# --- downloads -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotModified:
    """``If-None-Match`` holds the current ETag: 304, no body."""


@dataclass(frozen=True, slots=True)
class WholeFile:
    """200 with every byte."""


@dataclass(frozen=True, slots=True)
class PartOfFile:
    """206 with bytes ``first``..``last`` (inclusive) of ``size``."""

    first: int
    last: int
    size: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.first}-{self.last}/{self.size}"


@dataclass(frozen=True, slots=True)
class RangeNotSatisfiable:
    """416: the one range asked for lies past the end of the file."""

    size: int

    @property
    def content_range(self) -> str:
        return f"bytes */{self.size}"


Delivery = NotModified | WholeFile | PartOfFile | RangeNotSatisfiable

_ONE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_ETAG = re.compile(r'(?:W/)?("[\x21\x23-\x7e]*")')


def plan_delivery(
    entry: AudioEntry,
    *,
    range_header: str | None,
    if_none_match: str | None,
    if_range: str | None,
) -> Delivery:
    """What a ``GET`` of the file answers (RFC 9110 §13 and §14).

    ``If-None-Match`` (weak comparison, lists and ``*``) wins over ``Range``. A ``Range`` that is
    malformed, or names several ranges, is ignored and the whole file is sent, as RFC 9110
    allows; so is any ``Range`` when ``If-Range`` does not carry the current ETag (an HTTP date
    there never matches: the ETag is the only validator a file has)."""
    size = entry.size_bytes
    if if_none_match is not None and _matches_any(if_none_match, entry.etag):
        return NotModified()
    # Longer than any sensible range (and than the digits int() accepts): not a range at all.
    if range_header is None or len(range_header) > 100:
        return WholeFile()
    if if_range is not None and if_range.strip() != entry.etag:
        return WholeFile()
    match = _ONE_RANGE.fullmatch(range_header.strip().replace(" ", ""))
    if match is None:
        return WholeFile()
    start, end = match.group(1), match.group(2)
    if start == "" and end == "":
        return WholeFile()
    if start == "":
        suffix = int(end)
        if suffix == 0:
            return RangeNotSatisfiable(size)
        return PartOfFile(max(0, size - suffix), size - 1, size)
    first = int(start)
    if end != "" and int(end) < first:
        return WholeFile()
    if first >= size:
        return RangeNotSatisfiable(size)
    last = size - 1 if end == "" else min(int(end), size - 1)
    return PartOfFile(first, last, size)


def _matches_any(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    return etag in _ETAG.findall(header)
