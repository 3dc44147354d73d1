"""The sync handshake's comparison: the client's offline copies against the stored checksums of
the buyer's ready courses."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from coursemesh.customgen.domain.errors import PayloadTooLarge


class HeldCopy(Protocol):
    """A course as the client holds it."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def checksum(self) -> str: ...


@dataclass(frozen=True, slots=True)
class HandshakeDiff:
    """Each id the client sent is changed, removed or unchanged; missing are the stored ids the
    client did not send."""

    changed: list[uuid.UUID]
    missing: list[uuid.UUID]
    removed: list[uuid.UUID]
    unchanged_count: int


def check_handshake_size(held: Sequence[HeldCopy], max_courses: int) -> None:
    if len(held) > max_courses:
        raise PayloadTooLarge(
            f"At most {max_courses} courses per handshake", code="HANDSHAKE_TOO_LARGE"
        )


def diff_handshake(
    held: Sequence[HeldCopy], stored_ids: Sequence[uuid.UUID], stored_checksums: Sequence[str]
) -> HandshakeDiff:
    """Compare the client's (id, checksum) pairs with the stored ones (``stored_ids[i]`` has
    ``stored_checksums[i]``).

    An id sent twice counts once, where it was first sent, with the checksum sent last. A
    held id that is not stored (gone, not the buyer's, not ready) is removed; a stored id the
    client does not hold is missing. ``changed`` and ``removed`` keep the client's order,
    ``missing`` the stored order.
    """
    # Keyed by the UUID's int: it hashes and compares in C, where a ``uuid.UUID`` against the
    # driver's UUID subclass goes through Python code.
    client = {c.id.int: c for c in held}
    stored = {i.int: s for i, s in zip(stored_ids, stored_checksums, strict=True)}
    changed: list[uuid.UUID] = []
    removed: list[uuid.UUID] = []
    for key, copy in client.items():
        found = stored.get(key)
        if found is None:
            removed.append(copy.id)
        elif found != copy.checksum:
            changed.append(copy.id)
    # Every id the client sent and we store is a distinct stored id: when they are all of
    # them, nothing is missing (the common case, without a lookup per course).
    kept = len(client) - len(removed)
    missing = [] if kept == len(stored) else [i for i in stored_ids if i.int not in client]
    return HandshakeDiff(
        changed=changed, missing=missing, removed=removed, unchanged_count=kept - len(changed)
    )
