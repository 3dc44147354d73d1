"""The handshake's request body, declared once: decoded by ``http.handshake``, documented in the
OpenAPI document from this declaration, and its example built as one of these."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec

CHECKSUM_PATTERN = r"^[0-9a-f]{32}$"
Checksum = Annotated[str, msgspec.Meta(pattern=CHECKSUM_PATTERN)]
# A hard ceiling at the edge; the configured HANDSHAKE_MAX_COURSES is checked below it.
HANDSHAKE_CEILING = 10_000


class HeldCourse(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    id: uuid.UUID
    checksum: Checksum


class Handshake(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    courses: Annotated[list[HeldCourse], msgspec.Meta(max_length=HANDSHAKE_CEILING)]
