"""Ports: what the use cases need from the outside world."""

from __future__ import annotations

from typing import Protocol

import msgspec

from coursemesh.customgen.domain.course import SessionScript
from coursemesh.customgen.domain.intake import Intake, Voice


class ScriptWriterError(Exception):
    """The script writer failed or answered something unusable (the step is retried)."""


class SpeechError(Exception):
    """Speech synthesis failed (the step is retried)."""


class StorageError(Exception):
    """Object storage failed (the step is retried)."""


class ScriptRequest(msgspec.Struct, frozen=True, kw_only=True):
    custom_course_id: str
    course_code: str
    intake: Intake


class ScriptWriter(Protocol):
    name: str

    async def write(self, request: ScriptRequest) -> list[SessionScript]: ...


class Pcm(msgspec.Struct, frozen=True):
    """Mono signed 16-bit little-endian samples."""

    samples: bytes
    sample_rate: int

    @property
    def sample_count(self) -> int:
        return len(self.samples) // 2

    @property
    def duration_ms(self) -> int:
        return round(self.sample_count * 1000 / self.sample_rate)


class SpeechSynthesizer(Protocol):
    async def synthesize(self, text: str, voice: Voice) -> Pcm: ...


class EncodedAudio(msgspec.Struct, frozen=True):
    body: bytes
    duration_ms: int
    content_type: str
    format: str


class AudioEncoder(Protocol):
    async def encode(self, pcm: Pcm) -> EncodedAudio: ...


class AudioStore(Protocol):
    async def put(self, key: str, body: bytes, content_type: str, md5_hex: str) -> None: ...

    async def delete(self, key: str) -> None: ...

    def public_url(self, key: str) -> str | None:
        """The permanent URL of an object, when the bucket is public (stored in the data)."""
        ...

    async def download_url(self, key: str) -> str:
        """A URL a client can fetch now: the public one, or a presigned one."""
        ...
