"""One request header read straight off the ASGI scope: the hot routes' way.

Litestar's ``request.headers`` builds a mapping of every header on first use, which costs more
than the one lookup a hot route needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def raw_header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case, as ASGI servers give names), or None."""
    headers: Iterable[tuple[bytes, bytes]] = scope["headers"]
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None
